// A ResNet-50 whose training step is well conditioned in float32, for comparing backends.
//
// With torchvision's initialisation (every BN gamma 1) a deep ResNet maps different 32x32
// images to nearly collinear features, and train-mode BN over layer4's few values per
// channel then cancels catastrophically: PyTorch's own float32 gradients are 3e-2 to 2e-1
// (max-relative) away from float64 for batch 8 and 32 (measured with Debian's PyTorch), so
// two float32 backends cannot be held closer than that. Damping the last BN of every residual
// branch to gamma 0.2 (a softened zero_init_residual, as tests/oracle/torch_oracle.py does)
// brings float32 vs float64 to 2e-5 on batch 8, which leaves real bugs nowhere to hide.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "nn/model.h"

namespace dp::test {

inline constexpr float kDampedResidualGamma = 0.2f;

inline std::unique_ptr<nn::Model> make_damped_resnet50(Backend& backend) {
  nn::ModelSpec spec;
  spec.arch = "resnet50";
  spec.num_classes = 10;
  spec.seed = 3;
  auto model = nn::make_model(spec, backend);
  nn::ParameterStore& store = model->store();
  const std::string last_bn_gamma = ".bn3.weight";  // a Bottleneck's last BN
  int damped = 0;
  for (nn::ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const nn::StateEntry& e = store.entry(id);
    if (!e.name.ends_with(last_bn_gamma)) continue;
    const std::vector<float> gamma(static_cast<size_t>(numel(e.shape)), kDampedResidualGamma);
    store.write(e.name, gamma.data(), gamma.size());
    ++damped;
  }
  EXPECT_EQ(damped, 16) << "ResNet-50 has 16 bottleneck blocks";
  return model;
}

}  // namespace dp::test
