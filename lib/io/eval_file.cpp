#include "io/eval_file.h"

#include "io/hdf5.h"

namespace dp {

void write_eval_file(const std::string& path, const EvalProvenance& provenance,
                     const EvaluationResult& result, const std::vector<std::string>& class_names) {
  h5::File file(path, h5::File::Mode::create_truncate);
  file.set_attribute("format", std::string(kEvalFileFormat));
  file.set_attribute("format_version", kEvalFormatVersion);
  file.set_attribute("checkpoint", provenance.checkpoint);
  file.set_attribute("data", provenance.data);
  file.set_attribute("checkpoint_epoch", provenance.checkpoint_epoch);
  file.set_attribute("checkpoint_step", provenance.checkpoint_step);
  file.set_attribute("tta", provenance.tta);
  file.set_attribute("world_size", provenance.world_size);
  file.set_attribute("backend", provenance.backend);
  write_evaluation(file, "eval", result, class_names);
  file.close();
}

bool is_eval_file(const h5::File& file) {
  return file.has("eval") && file.has_attribute("checkpoint") && file.has_attribute("data");
}

}  // namespace dp
