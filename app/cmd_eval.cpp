// `dptrain eval`: rebuild the model a checkpoint describes, load it, evaluate the test split
// of a packed dataset on all ranks, print the result and (rank 0) write it as HDF5.
#include <boost/program_options.hpp>
#include <filesystem>

#include "app/commands.h"
#include "app/parse_options.h"
#include "comm/communicator.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "data/hdf5_dataset.h"
#include "io/hdf5.h"
#include "train/backend_choice.h"
#include "train/device_batch.h"
#include "train/evaluator.h"
#include "train/model_state.h"
#include "train/same_input_check.h"

namespace po = boost::program_options;

namespace dp {

int run_eval(const std::vector<std::string>& args, MpiSession& mpi) {
  std::string checkpoint, data_file, output, device = "auto", precision = "fp32";
  int64_t batch_size = 256;
  int threads = 0, tta = 0;
  bool deterministic = false;
  po::options_description desc("dptrain eval options");
  desc.add_options()
      ("help,h", "print this help")
      ("checkpoint", po::value(&checkpoint)->required(), "checkpoint.h5 written by dptrain train")
      ("data", po::value(&data_file)->required(), "packed dataset; its test split is evaluated")
      ("output", po::value(&output), "HDF5 file for the results (default: eval.h5 beside the checkpoint)")
      ("batch-size", po::value(&batch_size)->default_value(batch_size), "evaluation batch size per rank")
      ("device", po::value(&device)->default_value(device), "auto|cpu|cuda")
      ("threads", po::value(&threads)->default_value(threads), "compute threads per rank (0: all)")
      ("tta", po::value(&tta)->default_value(tta),
       "test-time augmentation: 0 the image, 1 + its mirror, 2 + both shifted one pixel "
       "diagonally each way with reflect padding (6 passes)")
      ("precision", po::value(&precision)->default_value(precision),
       "fp32, tf32 (CUDA) or bf16 (CUDA; CPU with AVX512-BF16 or AMX)")
      ("deterministic", po::bool_switch(&deterministic), "CUDA: deterministic algorithms only");
  if (!parse_options(args, desc, "usage: dptrain eval --checkpoint FILE --data FILE")) return 0;
  if (batch_size < 1) throw UsageError("option --batch-size: must be at least 1");
  const std::vector<EvalView> views = tta_views(tta);
  if (output.empty())
    output = (std::filesystem::path(checkpoint).parent_path() / "eval.h5").string();

  check_same_input_on_all_ranks("--checkpoint", checkpoint);
  check_same_input_on_all_ranks("--data", data_file);
  CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  data::HDF5Dataset test_set(data_file, "test");
  nn::ModelSpec spec;
  spec.arch = meta.strings.count("arch") ? meta.strings.at("arch") : "";
  // The checkpoint's shortcut; those from before --shortcut existed were all option B.
  spec.shortcut = nn::parse_shortcut(meta.strings.count("shortcut") ? meta.strings.at("shortcut") : "B");
  spec.num_classes = meta.ints.count("num_classes") ? meta.ints.at("num_classes") : 0;
  spec.in_channels = meta.ints.count("in_channels") ? meta.ints.at("in_channels") : 0;
  if (spec.num_classes != test_set.num_classes() || spec.in_channels != test_set.channels())
    throw DataError(fmt::format(
        "{}: checkpoint is for {} classes x {} channels, {} has {} classes x {} channels",
        checkpoint, spec.num_classes, spec.in_channels, data_file, test_set.num_classes(),
        test_set.channels()));

  BackendChoice choice = choose_backend(device, threads, mpi.local_rank(), mpi.local_size(),
                                       cuda_options(precision, deterministic), true, spec.arch);
  auto model = nn::make_model(spec, *choice.backend);
  ModelState(*model, nullptr).load(checkpoint);
  auto comm = make_mpi_communicator();
  EvalOptions options;
  options.batch_size = batch_size;
  options.augment_on_backend = augments_on_backend("auto", *choice.backend);
  options.views = views;
  EvaluationResult result = evaluate(*model, test_set, options, *comm);

  log::info("{} on {} test split: accuracy {:.2f}% loss {:.4f} ({} images, {})", checkpoint,
            data_file, 100 * result.accuracy(), result.loss, result.samples, choice.reason);
  if (mpi.rank() == 0) {
    h5::File file(output, h5::File::Mode::create_truncate);
    file.set_attribute("checkpoint", checkpoint);
    file.set_attribute("data", data_file);
    write_evaluation(file, "eval", result, test_set.class_names());
    log::info("wrote {}", output);
  }
  return 0;
}

}  // namespace dp
