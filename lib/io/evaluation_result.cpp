#include "io/evaluation_result.h"

#include "io/hdf5.h"

namespace dp {

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

// From the counts, 2 tp / (2 tp + fp + fn) = 2 tp / (support + predicted), as scikit-learn
// >= 1.3 and dptrain-report compute it: equal to 2PR / (P + R), without its rounding.
std::vector<double> EvaluationResult::f1() const {
  const auto s = support();
  std::vector<double> out(num_classes, 0.0);
  for (int64_t k = 0; k < num_classes; ++k) {
    int64_t predicted = 0;
    for (int64_t t = 0; t < num_classes; ++t) predicted += confusion[t * num_classes + k];
    if (s[k] + predicted > 0)
      out[k] = 2.0 * static_cast<double>(confusion[k * num_classes + k]) /
               static_cast<double>(s[k] + predicted);
  }
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

}  // namespace dp
