// `dptrain eval`: rebuild the model a checkpoint describes, load it, evaluate the test split
// of a packed dataset on all ranks, print the result and (rank 0) write it as HDF5.
#include <fmt/ranges.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "app/agreed_parse.h"
#include "app/commands.h"
#include "app/parse_options.h"
#include "comm/collective_watchdog.h"
#include "comm/communicator.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "core/unique_fd.h"
#include "data/hdf5_dataset.h"
#include "io/eval_file.h"
#include "io/hdf5.h"
#include "io/replace_file.h"
#include "nn/model.h"
#include "train/backend_choice.h"
#include "train/checkpoint_keys.h"
#include "train/device_batch.h"
#include "train/evaluator.h"
#include "train/model_state.h"
#include "train/run_directory.h"
#include "train/same_config_check.h"
#include "train/same_input_check.h"
#include "train/trained_data.h"

namespace po = boost::program_options;

namespace dp {

namespace key = checkpoint_keys;

namespace {

struct EvalArgs {
  std::string checkpoint, data_file, output;
  int64_t batch_size = 256;
  int tta = 0;
  double collective_timeout = 600;
  DeviceOptions device;
};

po::options_description describe(EvalArgs& a) {
  po::options_description desc("dptrain eval options");
  desc.add_options()
      ("help,h", "print this help")
      ("checkpoint", po::value(&a.checkpoint)->required(), "checkpoint.h5 written by dptrain train")
      ("data", po::value(&a.data_file)->required(), "packed dataset; its test split is evaluated")
      ("output", po::value(&a.output), "HDF5 file for the results (default: eval.h5 beside the checkpoint)")
      ("batch-size", po::value(&a.batch_size)->default_value(a.batch_size), "evaluation batch size per rank")
      ("tta", po::value(&a.tta)->default_value(a.tta),
       "test-time augmentation: 0 the image, 1 + its mirror, 2 + both shifted one pixel "
       "diagonally each way with reflect padding (6 passes)")
      ("collective-timeout", po::value(&a.collective_timeout)->default_value(a.collective_timeout),
       "end the job when a rank made no progress (an evaluation batch, counted from the start) "
       "for this many seconds (0 = off), as train's");
  add_device_options(desc, a.device);
  return desc;
}

// The options every rank must share: all but the files, which are compared as files (a staged
// copy may have another path; only rank 0 writes --output), and those that may differ between
// nodes (--threads, --pin-threads: may_differ_between_ranks).
std::map<std::string, std::string> shared_options(std::map<std::string, std::string> effective) {
  effective.erase("checkpoint");
  effective.erase("output");
  return effective;
}

// The model the checkpoint holds, refused in one line where the dataset does not fit it.
nn::ModelSpec checkpoint_model(const EvalArgs& a, const CheckpointMeta& meta,
                               const data::HDF5Dataset& test_set) {
  nn::ModelSpec spec;
  spec.arch = meta.string_or(key::kArch, "");
  spec.shortcut = nn::parse_shortcut(checkpoint_shortcut(meta));
  spec.num_classes = meta.int_or(key::kNumClasses, 0);
  spec.in_channels = meta.int_or(key::kInChannels, 0);
  if (spec.num_classes != test_set.num_classes() || spec.in_channels != test_set.channels())
    throw DataError(fmt::format(
        "{}: checkpoint is for {} classes x {} channels, {} has {} classes x {} channels",
        a.checkpoint, spec.num_classes, spec.in_channels, a.data_file, test_set.num_classes(),
        test_set.channels()));
  if (const std::string differs = class_names_difference(meta, test_set.class_names());
      !differs.empty())
    throw DataError(fmt::format("{}: checkpoint is for other classes than {}: {}", a.checkpoint,
                                a.data_file, differs));
  const std::string problem =
      nn::input_size_problem(spec.arch, test_set.height(), test_set.width());
  if (!problem.empty())
    throw DataError(fmt::format("{}: the checkpoint's {}", a.data_file, problem));
  return spec;
}

// With the statistics the run normalised with, which the checkpoint records (older ones do
// not: then the file's), not those of --data: a file packed again from other training images
// has other statistics for the same test images.
void normalize_as_trained(const EvalArgs& a, const CheckpointMeta& meta,
                          const data::HDF5Dataset& test_set, EvalOptions& options) {
  Normalization trained = recorded_normalization(meta, test_set.channels(), a.checkpoint);
  if (!options.normalize || trained.mean.empty()) return;
  if (trained.mean != test_set.mean() || trained.std != test_set.std())
    log::info(
        "note: normalising with the statistics the checkpoint's run trained with (mean "
        "{}, std {}), not {}'s (mean {}, std {})",
        fmt::join(trained.mean, " "), fmt::join(trained.std, " "), a.data_file,
        fmt::join(test_set.mean(), " "), fmt::join(test_set.std(), " "));
  options.mean = std::move(trained.mean);
  options.std = std::move(trained.std);
}

// The network `spec` describes; a description no network fits (an edited or foreign file's
// arch or shortcut) is the checkpoint's fault, not an option's: said so, naming the file.
std::unique_ptr<nn::Model> checkpoint_network(const EvalArgs& a, const nn::ModelSpec& spec,
                                              Backend& backend) {
  try {
    return nn::make_model(spec, backend);
  } catch (const UsageError& e) {
    throw DataError(fmt::format("{}: the checkpoint's model (arch '{}'): {}", a.checkpoint,
                                spec.arch, e.what()));
  }
}

bool existing_eval_file(const std::string& path) {
  try {
    return is_eval_file(h5::File(path, h5::File::Mode::read));
  } catch (const Error&) {  // not HDF5, or unreadable: not ours to replace either
    return false;
  }
}

// Whether a file can be created in `folder` (permissions, a read-only or special file
// system): a probe file made and removed, as the rules are the file system's to apply.
void check_writable(const std::filesystem::path& folder, const std::string& output) {
  std::string probe = (folder / ".dptrain-eval-probe-XXXXXX").string();
  const UniqueFd fd(mkstemp(probe.data()));
  if (!fd.is_open())
    throw IoError(fmt::format("option --output: {}: cannot create a file in folder {}: {}", output,
                              folder.string(), std::strerror(errno)));
  unlink(probe.c_str());
}

// --output names a new file in an existing folder, or an eval file an earlier `dptrain eval`
// wrote: never the checkpoint, the dataset, a link or another file the evaluation would
// replace.
// Checked on every rank before the evaluation runs; that rank 0 can write there, too.
void check_output(const EvalArgs& a, bool writes) {
  namespace fs = std::filesystem;
  const fs::path out(a.output);
  const fs::path folder = out.has_parent_path() ? out.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw UsageError(fmt::format("option --output: {}: folder {} {}", a.output, folder.string(),
                                 fs::exists(folder, ec) ? "is not a folder" : "does not exist"));
  if (writes) {
    check_writable(folder, a.output);
    check_no_leftover_tmp(a.output);  // the rank that writes it: others may name other paths
  }
  const bool is_link = fs::is_symlink(fs::symlink_status(out, ec));
  for (const auto& [input, option] :
       {std::pair{&a.checkpoint, "--checkpoint"}, std::pair{&a.data_file, "--data"}})
    if (!is_link && fs::equivalent(out, *input, ec))
      throw UsageError(fmt::format("option --output: {} is the {} file", a.output, option));
  check_replaceable_output(a.output,
                           {"option --output", "eval", "an eval file", existing_eval_file});
}

// Written beside the output and renamed over it: a failed write leaves any earlier file whole.
void replace_eval_file(const EvalArgs& a, const EvalProvenance& provenance,
                       const EvaluationResult& result, const data::HDF5Dataset& test_set) {
  write_then_rename(a.output, [&](const std::string& tmp) {
    write_eval_file(tmp, provenance, result, test_set.class_names());
  });
  log::info("wrote {}", a.output);
}

// The command line into `a`, `effective` and --tta's `views`, checked; false where --help was
// printed.
bool parse_eval_args(const std::vector<std::string>& args, EvalArgs& a,
                     std::map<std::string, std::string>& effective, std::vector<EvalView>& views) {
  po::options_description desc = describe(a);
  if (!parse_options(args, desc, "usage: dptrain eval --checkpoint FILE --data FILE", nullptr,
                     &effective))
    return false;
  if (a.batch_size < 1) throw UsageError("option --batch-size: must be at least 1");
  if (const std::string problem = collective_timeout_problem(a.collective_timeout);
      !problem.empty())
    throw UsageError("option --collective-timeout: " + problem);
  validate_device_options(a.device);
  views = tta_views(a.tta);  // throws for a level it has no views for
  return true;
}

}  // namespace

int run_eval(const std::vector<std::string>& args, MpiSession& mpi) {
  EvalArgs a;
  std::map<std::string, std::string> effective;
  std::vector<EvalView> views;
  if (!parse_on_every_rank([&] { return parse_eval_args(args, a, effective, views); })) return 0;
  if (a.output.empty())
    a.output = (std::filesystem::path(a.checkpoint).parent_path() / kEvalFileName).string();

  // Watched from here: a rank stuck on its files (a hung file system) ends the job.
  CollectiveWatchdog watchdog(a.collective_timeout);
  check_same_options_on_all_ranks(shared_options(std::move(effective)), "command line");
  check_same_input_on_all_ranks("--checkpoint", a.checkpoint);
  check_same_input_on_all_ranks("--data", a.data_file);
  check_output(a, mpi.rank() == 0);
  // Read on every rank; a file every rank finds damaged is reported once (run_agreeing).
  CheckpointMeta meta;
  std::optional<data::HDF5Dataset> opened;
  nn::ModelSpec spec;
  run_agreeing([&] {
    meta = read_checkpoint_meta(a.checkpoint);
    opened.emplace(a.data_file, "test");
    spec = checkpoint_model(a, meta, *opened);
  });
  const data::HDF5Dataset& test_set = *opened;
  auto comm = make_mpi_communicator();
  BackendChoice choice = agree_on_backend(
      choose_backend(a.device, mpi.local_rank(), mpi.local_size(), spec.arch), *comm);
  std::unique_ptr<nn::Model> model;
  EvalOptions options;
  options.batch_size = a.batch_size;
  options.normalize = trained_normalized(meta);  // as the run trained
  run_agreeing([&] {
    model = checkpoint_network(a, spec, *choice.backend);
    ModelState(*model, nullptr).load(a.checkpoint);
    normalize_as_trained(a, meta, test_set, options);
  });
  options.augment_on_backend = augments_on_backend(AugmentOn::automatic, *choice.backend);
  options.views = views;
  options.on_batch = [&watchdog] { watchdog.beat(); };
  const EvaluationResult result = evaluate(*model, test_set, options, *comm);
  require_finite_loss(result, fmt::format("{} on {}", a.checkpoint, a.data_file));

  log::info("{} on {} test split: accuracy {:.2f}% loss {:.4f} ({} images, {})", a.checkpoint,
            a.data_file, 100 * result.accuracy(), result.loss, result.samples, choice.reason);
  const EvalProvenance provenance{.checkpoint = a.checkpoint,
                                  .data = a.data_file,
                                  .checkpoint_epoch = meta.int_or(key::kEpoch, 0),
                                  .checkpoint_step = meta.int_or(key::kStep, 0),
                                  .tta = a.tta,
                                  .world_size = mpi.world_size(),
                                  .backend = choice.reason};
  if (mpi.rank() == 0) replace_eval_file(a, provenance, result, test_set);
  return 0;
}

}  // namespace dp
