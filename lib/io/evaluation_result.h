// The result of evaluating a model on a split: the confusion matrix and the metrics that follow
// from it, and its HDF5 group, shared by metrics.h5's /final and eval.h5's /eval.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dp {

namespace h5 {
class File;
}

// Results of evaluating on a split: the confusion matrix (rows = true class, columns =
// predicted) and what follows from it.
struct EvaluationResult {
  double loss = 0;
  int64_t samples = 0;
  std::vector<int64_t> confusion;  // K*K, row-major
  int64_t num_classes = 0;
  double accuracy() const;
  std::vector<double> precision() const, recall() const, f1() const;
  std::vector<int64_t> support() const;
};

// Writes /final-style groups (confusion matrix, per-class metrics, class names) into `group`
// of an open file; shared by metrics.h5 and `dptrain eval`'s eval.h5.
void write_evaluation(h5::File& file, const std::string& group, const EvaluationResult& result,
                      const std::vector<std::string>& class_names);

}  // namespace dp
