// Moves a model's flat state (parameters, BN buffers, optional momentum and Lookahead average)
// between the device and a checkpoint file, tensor by tensor under torchvision's state_dict
// names. Host staging copies make it work the same for every backend.
#pragma once

#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "nn/model.h"
#include "train/checkpoint_keys.h"
#include "train/lookahead_callback.h"

namespace dp {

// The shortcut option ("A" or "B") of a checkpoint's model. Checkpoints from before --shortcut
// existed have none: every model then had option B.
inline std::string checkpoint_shortcut(const CheckpointMeta& meta) {
  return meta.string_or(checkpoint_keys::kShortcut, "B");
}

class ModelState {
 public:
  // `momentum` may be null (evaluation: no optimizer state).
  ModelState(nn::Model& model, Tensor* momentum);
  // Adds a Lookahead average to the sections (it lives on the host: saved from and loaded into
  // `average` itself, which must outlive this object).
  void include_lookahead(LookaheadAverage& average) { lookahead_ = &average; }

  // Device -> host staging, then one checkpoint file (tmp + rename).
  void save(const std::string& path, const CheckpointMeta& meta);
  // File -> host staging -> device. Shapes must match the model exactly.
  CheckpointMeta load(const std::string& path);

  // The steps of save() and load() for callers that add sections of their own
  // (TrainingCheckpointer): copy_to_host() stages the device state and returns sections that
  // point into the staging buffers; load into staging_sections(), then copy_from_host().
  CheckpointSections copy_to_host();
  CheckpointSections staging_sections();
  void copy_from_host();
  // The staged BN buffers (flat, in ParameterStore order), e.g. to replace them with another
  // rank's before copy_from_host().
  std::vector<float>& staged_buffers() { return buffers_; }

 private:
  nn::Model& model_;
  Tensor* momentum_;
  LookaheadAverage* lookahead_ = nullptr;
  std::vector<float> params_, buffers_, momentum_host_;
};

}  // namespace dp
