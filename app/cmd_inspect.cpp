// `dptrain inspect FILE`: what a packed dataset, a checkpoint, a metrics or an eval file holds
// (h5dump shows everything; this shows what matters: a few lines, and a checkpoint's parameter
// names and shapes), first whether its checksums are there and match.
#include <fmt/ranges.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <iostream>

#include "app/agreed_parse.h"
#include "app/commands.h"
#include "app/parse_options.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "data/hdf5_dataset.h"
#include "data/packed_format.h"
#include "io/checkpoint.h"
#include "io/eval_file.h"
#include "io/file_verify.h"
#include "io/hdf5.h"
#include "io/metrics_writer.h"
#include "train/checkpoint_keys.h"

namespace po = boost::program_options;

namespace dp {

namespace key = checkpoint_keys;

namespace {

void inspect_dataset(const std::string& path) {
  for (const char* split : {"train", "test"}) {
    data::HDF5Dataset ds(path, split);
    log::info("{} {}: {} images {}x{}x{}, {} classes ({}), mean {:.4f} std {:.4f} (channel 0)",
              ds.name(), split, ds.size(), ds.height(), ds.width(), ds.channels(),
              ds.num_classes(), fmt::format("{}", fmt::join(ds.class_names(), ", ")),
              ds.mean().at(0), ds.std().at(0));
  }
}

// The summary line, then each parameter tensor's name and shape (the names --freeze matches).
void inspect_checkpoint(const h5::File& file) {
  int64_t count = 0;
  std::vector<std::string> lines;
  const auto names = file.group("params").children();
  for (const auto& name : names) {
    const auto dims = file.dataset("params/" + name).dims();
    int64_t n = 1;
    for (auto d : dims) n *= static_cast<int64_t>(d);
    count += n;
    lines.push_back(fmt::format("  {} [{}]", name, fmt::join(dims, ", ")));
  }
  log::info("checkpoint: arch {} epoch {} step {} world_size {}; {} parameter tensors, {} values",
            file.string_attribute(key::kArch), file.int_attribute(key::kEpoch),
            file.int_attribute(key::kStep), file.int_attribute(key::kWorldSize), names.size(),
            count);
  for (const auto& line : lines) log::info("{}", line);
}

void inspect_metrics(const h5::File& file) {
  std::vector<double> epoch, train_loss, val_acc, ips;
  const std::pair<const char*, std::vector<double>*> columns[] = {
      {"history/epoch", &epoch},
      {"history/train_loss", &train_loss},
      {"history/val_acc", &val_acc},
      {"history/images_per_sec", &ips}};
  for (const auto& [name, values] : columns) {
    file.dataset(name).read(*values);
    if (values->size() != epoch.size())  // a row per epoch in every column, as written
      throw DataError(fmt::format("{}: {} has {} rows, history/epoch {}", file.filename(), name,
                                  values->size(), epoch.size()));
  }
  log::info("metrics: {} epochs", epoch.size());
  // NaN: not evaluated that epoch, or (the loss) every step of it skipped as non-finite.
  const auto shown = [](double value, const char* format, double scale) {
    return std::isnan(value) ? std::string("-") : fmt::format(fmt::runtime(format), scale * value);
  };
  for (size_t i = 0; i < epoch.size(); ++i)
    log::info("  epoch {:3.0f}  train loss {}  val acc {}  {:.1f} img/s", epoch[i],
              shown(train_loss[i], "{:.4f}", 1), shown(val_acc[i], "{:.2f}%", 100), ips[i]);
}

// An evaluation group (an eval file's /eval, a metrics file's /final): accuracy, loss and
// each class's recall.
void inspect_evaluation(const h5::Group& group, const std::string& label) {
  std::vector<double> recall;
  group.dataset("recall").read(recall);
  const std::vector<std::string> names = group.dataset("class_names").read_strings();
  if (names.size() != recall.size())
    throw DataError(fmt::format("{}: {} class names for {} classes", group.path(), names.size(),
                                recall.size()));
  log::info("{}: accuracy {:.2f}% loss {:.4f} over {} images", label,
            100 * group.double_attribute("accuracy"), group.double_attribute("loss"),
            group.int_attribute("samples"));
  std::vector<std::string> by_class;
  for (size_t k = 0; k < names.size(); ++k)
    by_class.push_back(fmt::format("{} {:.1f}%", names[k], 100 * recall[k]));
  log::info("  recall by class: {}", fmt::join(by_class, ", "));
}

// Whether the file carries checksums and whether they all match (the whole file is read).
void inspect_checksums(const std::string& path) {
  const FileVerification v = verify_file(path);
  if (!v.ok) throw DataError(v.problem);
  if (v.verified())
    log::info("checksums: verified ({} datasets, every one checksummed and matching)", v.datasets);
  else
    log::info("checksums: unverified ({}; written by an earlier dptrain or another program)",
              unverified_parts(v));
}

}  // namespace

int run_inspect(const std::vector<std::string>& args, MpiSession& mpi) {
  std::string path;
  po::options_description desc("dptrain inspect options");
  desc.add_options()("help,h", "print this help")(
      "file", po::value(&path), "packed dataset, checkpoint, metrics or eval file");
  po::positional_options_description positional;
  positional.add("file", 1);
  const bool parsed = parse_on_every_rank([&] {
    if (!parse_options(args, desc, "usage: dptrain inspect FILE", positional)) return false;
    if (path.empty()) throw UsageError("inspect: no file given (usage: dptrain inspect FILE)");
    return true;
  });
  if (!parsed) return 0;
  if (mpi.rank() != 0) return 0;
  inspect_checksums(path);
  h5::File file(path, h5::File::Mode::read);
  std::string format = file.has_attribute("format") ? file.string_attribute("format") : "";
  if (format == data::packed::kFormat) {
    file.close();
    inspect_dataset(path);
  } else if (format == kMetricsFileFormat) {
    inspect_metrics(file);
    if (file.has("final")) inspect_evaluation(file.group("final"), "final evaluation");
  } else if (is_checkpoint_file(file)) {
    inspect_checkpoint(file);
  } else if (is_eval_file(file)) {
    inspect_evaluation(file.group("eval"),
                       fmt::format("eval of {} on {}", file.string_attribute("checkpoint"),
                                   file.string_attribute("data")));
  } else {
    throw DataError(
        fmt::format("{}: not a dptrain dataset, checkpoint, metrics or eval file", path));
  }
  return 0;
}

}  // namespace dp
