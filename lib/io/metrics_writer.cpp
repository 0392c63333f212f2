#include "io/metrics_writer.h"

#include <cmath>
#include <limits>

#include "io/durable_file.h"
#include "io/file_verify.h"
#include "io/hdf5.h"

namespace dp {

namespace {

struct HistoryField {
  const char* name;
  double (*get)(const EpochRecord&);
};

// The /history datasets, in the order the README lists them.
const HistoryField kHistoryFields[] = {
    {"epoch", [](const EpochRecord& r) { return double(r.epoch); }},
    {"steps", [](const EpochRecord& r) { return double(r.steps); }},
    {"lr", [](const EpochRecord& r) { return r.lr; }},
    {"train_loss", [](const EpochRecord& r) { return r.train_loss; }},
    {"train_acc", [](const EpochRecord& r) { return r.train_acc; }},
    {"val_loss", [](const EpochRecord& r) { return r.val_loss; }},
    {"val_acc", [](const EpochRecord& r) { return r.val_acc; }},
    {"epoch_time", [](const EpochRecord& r) { return r.epoch_time; }},
    {"images_per_sec", [](const EpochRecord& r) { return r.images_per_sec; }},
    {"time_data", [](const EpochRecord& r) { return r.time_data; }},
    {"time_forward", [](const EpochRecord& r) { return r.time_forward; }},
    {"time_backward", [](const EpochRecord& r) { return r.time_backward; }},
    {"time_comm", [](const EpochRecord& r) { return r.time_comm; }},
    {"time_optimizer", [](const EpochRecord& r) { return r.time_optimizer; }},
    {"time_eval", [](const EpochRecord& r) { return r.time_eval; }},
    {"skipped_steps", [](const EpochRecord& r) { return double(r.skipped_steps); }},
    {"time_comm_hidden", [](const EpochRecord& r) { return r.time_comm_hidden; }},
    {"step_time_max", [](const EpochRecord& r) { return r.step_time_max; }},
    {"step_time_min", [](const EpochRecord& r) { return r.step_time_min; }},
};

struct StepField {
  const char* name;
  double (*get)(const StepRecord&);
};

// The /steps datasets.
const StepField kStepFields[] = {
    {"step", [](const StepRecord& r) { return double(r.step); }},
    {"epoch", [](const StepRecord& r) { return double(r.epoch); }},
    {"loss", [](const StepRecord& r) { return r.loss; }},
    {"accuracy", [](const StepRecord& r) { return r.accuracy; }},
    {"lr", [](const StepRecord& r) { return r.lr; }},
};

// Rows of an ascending 1-based counter (history/epoch, steps/step) that are <= `keep`.
hsize_t rows_up_to(const h5::Dataset& counter, int64_t keep) {
  std::vector<double> values;
  counter.read(values);
  hsize_t rows = 0;
  while (rows < values.size() && values[rows] <= double(keep)) ++rows;
  return rows;
}

// Rows per HDF5 chunk of /history (one row an epoch) and of /steps (one row a step).
constexpr hsize_t kHistoryChunkRows = 64, kStepChunkRows = 1024;

template <typename Field>
void create_fields(const h5::Group& group, const Field& fields, hsize_t chunk_rows) {
  for (const auto& field : fields)
    if (!group.has(field.name)) group.write<double>(field.name, {0}, nullptr, chunk_rows);
}

// Before a resume changes anything: every column of `group` is one value a row of its counter
// column (history/epoch, steps/step), as written. A column a file from before it existed lacks
// is added, NaN in the rows before (not recorded; never an invented 0).
template <typename Field>
void check_and_complete_fields(const h5::Group& group, const Field& fields, const char* counter,
                               hsize_t chunk_rows) {
  const auto refuse = [&](const std::string& problem) {  // group.path() names the file
    return DataError(
        fmt::format("{}/{}; a resume cannot continue it (or start the run again "
                    "with --resume none --overwrite)",
                    group.path(), problem));
  };
  if (!group.has(counter)) throw refuse(fmt::format("{} is missing", counter));
  const std::vector<hsize_t> counter_dims = group.dataset(counter).dims();
  if (counter_dims.size() != 1) throw refuse(fmt::format("{} is not one column", counter));
  const hsize_t rows = counter_dims[0];
  for (const auto& field : fields) {
    if (!group.has(field.name)) {
      const std::vector<double> unknown(rows, std::numeric_limits<double>::quiet_NaN());
      group.write<double>(field.name, {rows}, unknown.data(), chunk_rows);
      continue;
    }
    const std::vector<hsize_t> dims = group.dataset(field.name).dims();
    if (dims.size() != 1 || dims[0] != rows)
      throw refuse(fmt::format("{} has {} rows, {} {}", field.name,
                               dims.size() == 1 ? fmt::format("{}", dims[0]) : "not one column of",
                               counter, rows));
  }
}

template <typename Field>
void truncate_fields(const h5::Group& group, const Field& fields, const char* counter,
                     int64_t keep) {
  const hsize_t rows = rows_up_to(group.dataset(counter), keep);
  for (const auto& field : fields) group.dataset(field.name).resize_rows(rows);
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path, int64_t steps_per_epoch)
    : path_(path),
      file_(std::make_unique<h5::File>(path, h5::File::Mode::open_in_memory)),
      steps_per_epoch_(steps_per_epoch) {}

void MetricsWriter::publish() { replace_durably(path_, file_->image(), "metrics file"); }

std::unique_ptr<MetricsWriter> MetricsWriter::reopen(
    const std::string& path, int64_t epochs, int64_t steps, int64_t steps_per_epoch,
    const std::map<std::string, std::string>& resume_info,
    const std::map<std::string, std::string>& config) {
  std::unique_ptr<MetricsWriter> writer(new MetricsWriter(path, steps_per_epoch));
  h5::File& file = *writer->file_;
  if (!file.has_attribute("format") || file.string_attribute("format") != kMetricsFileFormat ||
      !file.has("history"))
    throw DataError(fmt::format("{}: not a dptrain metrics file; cannot continue it", path));
  // Checked whole before anything is changed: a damaged row would otherwise surface only
  // when written after, an epoch later, and the damaged file would be rewritten meanwhile.
  if (const FileVerification check = verify_file(path); !check.ok)
    throw DataError(
        fmt::format("{}; a resume cannot continue it (or start the run again with "
                    "--resume none --overwrite)",
                    check.problem));
  if (file.has_attribute("format_version") &&
      file.int_attribute("format_version") > kMetricsFormatVersion)
    throw DataError(
        fmt::format("{}: metrics format_version {} (this build writes {}); a resume "
                    "cannot continue it",
                    path, file.int_attribute("format_version"), kMetricsFormatVersion));
  h5::Group history = file.group("history");
  check_and_complete_fields(history, kHistoryFields, "epoch", kHistoryChunkRows);
  const bool had_steps = file.has("steps");
  h5::Group step_group = file.require_group("steps");
  if (had_steps)
    check_and_complete_fields(step_group, kStepFields, "step", kStepChunkRows);
  else
    create_fields(step_group, kStepFields, kStepChunkRows);  // a file from before /steps
  truncate_fields(history, kHistoryFields, "epoch", epochs);
  // The checkpoint's last epoch has its row (written before the epoch's checkpoint); a history
  // that ends before it records another branch of the run, whose rows this one would join. (It
  // may begin later than epoch 1: a file started by a resume into a new run directory.)
  std::vector<double> kept;
  history.dataset("epoch").read(kept);
  if (!kept.empty() && kept.back() != double(epochs))
    throw DataError(fmt::format(
        "{}: its /history ends at epoch {}, the checkpoint has {} done: the file records "
        "another branch of the run; resume from the checkpoint it belongs to, or start the "
        "run again with --resume none --overwrite",
        path, kept.back(), epochs));
  truncate_fields(step_group, kStepFields, "step", steps);
  if (file.has("final")) file.remove("final");
  h5::Group resumes = file.require_group("resumes");
  h5::Group entry = resumes.create_group(std::to_string(resumes.children().size() + 1));
  for (const auto& [key, value] : resume_info) entry.set_attribute(key, value);
  if (!config.empty()) {
    h5::Group config_group = entry.create_group("config");
    for (const auto& [key, value] : config) config_group.set_attribute(key, value);
  }
  return writer;
}

MetricsWriter::MetricsWriter(const std::string& path,
                             const std::map<std::string, std::string>& config,
                             const std::map<std::string, std::string>& build_info,
                             int64_t steps_per_epoch)
    : path_(path),
      file_(std::make_unique<h5::File>(path, h5::File::Mode::create_in_memory)),
      steps_per_epoch_(steps_per_epoch) {
  file_->set_attribute("format", std::string(kMetricsFileFormat));
  file_->set_attribute("format_version", kMetricsFormatVersion);
  h5::Group config_group = file_->create_group("config");
  for (const auto& [key, value] : config) config_group.set_attribute(key, value);
  h5::Group build_group = file_->create_group("build");
  for (const auto& [key, value] : build_info) build_group.set_attribute(key, value);
  create_fields(file_->create_group("history"), kHistoryFields, kHistoryChunkRows);
  create_fields(file_->create_group("steps"), kStepFields, kStepChunkRows);
  publish();
}

MetricsWriter::~MetricsWriter() = default;

std::map<std::string, std::string> MetricsWriter::last_job_options(
    const std::string& path, const std::map<std::string, std::string>& names) {
  std::map<std::string, std::string> values;
  try {
    const h5::File file(path, h5::File::Mode::read);
    std::string where = "config";
    if (file.has("resumes")) {
      // Resumes are numbered 1, 2, ... in order (children() would sort "10" before "2").
      const std::string last = "resumes/" + std::to_string(file.group("resumes").children().size());
      if (file.has(last + "/config")) where = last + "/config";
    }
    if (!file.has(where)) return values;
    const h5::Group recorded = file.group(where);
    for (const auto& entry : names)
      if (recorded.has_attribute(entry.first))
        values[entry.first] = recorded.string_attribute(entry.first);
  } catch (const Error&) {
    values.clear();  // unreadable: reopen refuses it, naming what is wrong
  }
  return values;
}

void MetricsWriter::add_step(const StepRecord& record) { pending_steps_.push_back(record); }

void MetricsWriter::flush_steps() {
  if (pending_steps_.empty()) return;
  h5::Group steps = file_->group("steps");
  std::vector<double> column(pending_steps_.size());
  for (const auto& field : kStepFields) {
    for (size_t i = 0; i < pending_steps_.size(); ++i) column[i] = field.get(pending_steps_[i]);
    steps.dataset(field.name).append_rows<double>(column.size(), column.data());
  }
  if (steps_per_epoch_ > 0) steps.set_attribute("steps_per_epoch", steps_per_epoch_);
  pending_steps_.clear();
  publish();
}

void MetricsWriter::append_epoch(const EpochRecord& record) {
  flush_steps();
  h5::Group history = file_->group("history");
  for (const auto& field : kHistoryFields) {
    double value = field.get(record);
    history.dataset(field.name).append_rows<double>(1, &value);
  }
  publish();
}

void MetricsWriter::write_final(const EvaluationResult& result,
                                const std::vector<std::string>& class_names, int64_t tta) {
  write_evaluation(*file_, "final", result, class_names);
  file_->require_group("final").set_attribute("tta", tta);
  publish();
}

}  // namespace dp
