// `dptrain eval`'s output file (eval.h5): one evaluation and where it came from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/evaluation_result.h"

namespace dp {

// Its root `format` attribute (with `format_version`), as metrics.h5's "dptrain-metrics":
// what a reader such as dptrain-report tells the file by. Files written before it have none.
inline constexpr const char* kEvalFileFormat = "dptrain-eval";
inline constexpr int64_t kEvalFormatVersion = 1;

// What `dptrain eval`'s file records beside the evaluation, as root attributes: the files
// evaluated (`checkpoint` and `data`, which mark it as an eval file: is_eval_file), the
// checkpoint's position and how it was evaluated.
struct EvalProvenance {
  std::string checkpoint, data;
  int64_t checkpoint_epoch = 0, checkpoint_step = 0;  // finished epochs, optimizer steps
  int64_t tta = 0;                                    // --tta
  int64_t world_size = 1;                             // the ranks that shared the test split
  std::string backend;  // the backend, precision and threads that computed it
};

// `dptrain eval`'s file: the evaluation under /eval, its format and `provenance` at the root.
void write_eval_file(const std::string& path, const EvalProvenance& provenance,
                     const EvaluationResult& result, const std::vector<std::string>& class_names);
bool is_eval_file(const h5::File& file);

}  // namespace dp
