// Moves a model's flat state (parameters, BN buffers, optional momentum) between the device
// and a checkpoint file, tensor by tensor under torchvision's state_dict names. Host staging
// copies make it work the same for every backend.
#pragma once

#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "nn/model.h"

namespace dp {

class ModelState {
 public:
  // `momentum` may be null (evaluation: no optimizer state).
  ModelState(nn::Model& model, Tensor* momentum);

  // Device -> host staging, then one checkpoint file (tmp + rename).
  void save(const std::string& path, const CheckpointMeta& meta);
  // File -> host staging -> device. Shapes must match the model exactly.
  CheckpointMeta load(const std::string& path);

 private:
  CheckpointSections sections();

  nn::Model& model_;
  Tensor* momentum_;
  std::vector<float> params_, buffers_, momentum_host_;
};

}  // namespace dp
