#include "io/metrics_writer.h"

#include <cmath>

#include "io/durable_file.h"
#include "io/file_verify.h"
#include "io/hdf5.h"

namespace dp {

// ------------------------------------------------------------------ EvaluationResult

double EvaluationResult::accuracy() const {
  int64_t hits = 0;
  for (int64_t k = 0; k < num_classes; ++k) hits += confusion[k * num_classes + k];
  return samples ? static_cast<double>(hits) / samples : 0.0;
}

std::vector<int64_t> EvaluationResult::support() const {
  std::vector<int64_t> s(num_classes, 0);
  for (int64_t t = 0; t < num_classes; ++t)
    for (int64_t p = 0; p < num_classes; ++p) s[t] += confusion[t * num_classes + p];
  return s;
}

// Like scikit-learn, a class never predicted (or never present) gets 0, not NaN.
std::vector<double> EvaluationResult::precision() const {
  std::vector<double> out(num_classes, 0.0);
  for (int64_t p = 0; p < num_classes; ++p) {
    int64_t predicted = 0;
    for (int64_t t = 0; t < num_classes; ++t) predicted += confusion[t * num_classes + p];
    if (predicted) out[p] = static_cast<double>(confusion[p * num_classes + p]) / predicted;
  }
  return out;
}

std::vector<double> EvaluationResult::recall() const {
  std::vector<double> out(num_classes, 0.0);
  auto s = support();
  for (int64_t t = 0; t < num_classes; ++t)
    if (s[t]) out[t] = static_cast<double>(confusion[t * num_classes + t]) / s[t];
  return out;
}

std::vector<double> EvaluationResult::f1() const {
  auto p = precision(), r = recall();
  std::vector<double> out(num_classes, 0.0);
  for (int64_t k = 0; k < num_classes; ++k)
    if (p[k] + r[k] > 0) out[k] = 2 * p[k] * r[k] / (p[k] + r[k]);
  return out;
}

void write_evaluation(h5::File& file, const std::string& group_name, const EvaluationResult& r,
                      const std::vector<std::string>& class_names) {
  h5::Group group = file.require_group(group_name);
  const hsize_t k = static_cast<hsize_t>(r.num_classes);
  group.write<int64_t>("confusion_matrix", {k, k}, r.confusion.data());
  auto precision = r.precision(), recall = r.recall(), f1 = r.f1();
  auto support = r.support();
  group.write<double>("precision", {k}, precision.data());
  group.write<double>("recall", {k}, recall.data());
  group.write<double>("f1", {k}, f1.data());
  group.write<int64_t>("support", {k}, support.data());
  group.write_strings("class_names", class_names);
  group.set_attribute("accuracy", r.accuracy());
  group.set_attribute("loss", r.loss);
  group.set_attribute("samples", r.samples);
  file.flush();
}

void write_eval_file(const std::string& path, const EvalProvenance& provenance,
                     const EvaluationResult& result, const std::vector<std::string>& class_names) {
  h5::File file(path, h5::File::Mode::create_truncate);
  file.set_attribute("checkpoint", provenance.checkpoint);
  file.set_attribute("data", provenance.data);
  file.set_attribute("checkpoint_epoch", provenance.checkpoint_epoch);
  file.set_attribute("checkpoint_step", provenance.checkpoint_step);
  file.set_attribute("tta", provenance.tta);
  file.set_attribute("backend", provenance.backend);
  write_evaluation(file, "eval", result, class_names);
  file.close();
}

bool is_eval_file(const h5::File& file) {
  return file.has("eval") && file.has_attribute("checkpoint") && file.has_attribute("data");
}

// ------------------------------------------------------------------ MetricsWriter

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

template <typename Field>
void create_fields(const h5::Group& group, const Field& fields, hsize_t chunk_rows) {
  for (const auto& field : fields)
    if (!group.has(field.name)) group.write<double>(field.name, {0}, nullptr, chunk_rows);
}

template <typename Field>
void truncate_fields(const h5::Group& group, const Field& fields, const char* counter,
                     int64_t keep) {
  const hsize_t rows = rows_up_to(group.dataset(counter), keep);
  for (const auto& field : fields) group.dataset(field.name).resize_rows(rows);
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path)
    : path_(path), file_(std::make_unique<h5::File>(path, h5::File::Mode::open_in_memory)) {}

void MetricsWriter::publish() { replace_durably(path_, file_->image(), "metrics file"); }

std::unique_ptr<MetricsWriter> MetricsWriter::reopen(
    const std::string& path, int64_t epochs, int64_t steps,
    const std::map<std::string, std::string>& resume_info,
    const std::map<std::string, std::string>& config) {
  std::unique_ptr<MetricsWriter> writer(new MetricsWriter(path));
  h5::File& file = *writer->file_;
  if (!file.has_attribute("format") || file.string_attribute("format") != "dptrain-metrics" ||
      !file.has("history"))
    throw DataError(fmt::format("{}: not a dptrain metrics file; cannot continue it", path));
  // Checked whole before anything is changed: a damaged row would otherwise surface only
  // when written after, an epoch later, and the damaged file would be rewritten meanwhile.
  if (const FileVerification check = verify_file(path); !check.ok)
    throw DataError(
        fmt::format("{}; a resume cannot continue it (or start the run again with "
                    "--resume none --overwrite)",
                    check.problem));
  h5::Group history = file.group("history");
  create_fields(history, kHistoryFields, 64);  // files from before a field existed
  truncate_fields(history, kHistoryFields, "epoch", epochs);
  // Every epoch of the checkpoint has its row (written before the epoch's checkpoint); fewer
  // mean the file records another branch of the run, whose rows it would join.
  if (const int64_t rows = int64_t(history.dataset("epoch").dims().at(0)); rows != epochs)
    throw DataError(fmt::format(
        "{}: its /history holds {} epochs up to the checkpoint's position, which has {} done: "
        "the file records another branch of the run; resume from the checkpoint it belongs "
        "to, or start the run again with --resume none --overwrite",
        path, rows, epochs));
  h5::Group step_group = file.require_group("steps");
  create_fields(step_group, kStepFields, 1024);
  truncate_fields(step_group, kStepFields, "step", steps);
  if (file.has("final")) file.remove("final");
  h5::Group resumes = file.require_group("resumes");
  h5::Group entry = resumes.create_group(std::to_string(resumes.children().size() + 1));
  for (const auto& [key, value] : resume_info) entry.set_attribute(key, value);
  if (!config.empty()) {
    h5::Group config_group = entry.create_group("config");
    for (const auto& [key, value] : config) config_group.set_attribute(key, value);
  }
  writer->publish();
  return writer;
}

MetricsWriter::MetricsWriter(const std::string& path,
                             const std::map<std::string, std::string>& config,
                             const std::map<std::string, std::string>& build_info)
    : path_(path), file_(std::make_unique<h5::File>(path, h5::File::Mode::create_in_memory)) {
  file_->set_attribute("format", std::string("dptrain-metrics"));
  file_->set_attribute("format_version", int64_t{1});
  h5::Group config_group = file_->create_group("config");
  for (const auto& [key, value] : config) config_group.set_attribute(key, value);
  h5::Group build_group = file_->create_group("build");
  for (const auto& [key, value] : build_info) build_group.set_attribute(key, value);
  h5::Group history = file_->create_group("history");
  for (const auto& field : kHistoryFields) history.write<double>(field.name, {0}, nullptr, 64);
  create_fields(file_->create_group("steps"), kStepFields, 1024);
  publish();
}

MetricsWriter::~MetricsWriter() = default;

void MetricsWriter::add_step(const StepRecord& record) { pending_steps_.push_back(record); }

void MetricsWriter::flush_steps() {
  if (pending_steps_.empty()) return;
  h5::Group steps = file_->group("steps");
  std::vector<double> column(pending_steps_.size());
  for (const auto& field : kStepFields) {
    for (size_t i = 0; i < pending_steps_.size(); ++i) column[i] = field.get(pending_steps_[i]);
    steps.dataset(field.name).append_rows<double>(column.size(), column.data());
  }
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
                                const std::vector<std::string>& class_names) {
  write_evaluation(*file_, "final", result, class_names);
  publish();
}

}  // namespace dp
