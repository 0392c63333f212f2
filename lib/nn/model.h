// The model interface the trainer sees, and the zoo that builds one by name.
// Archs: torchvision "resnet18", "resnet34", "resnet50" (ImageNet stem: 7x7/2 conv, BN, ReLU,
// 3x3/2 max pool); "resnet18_cifar", "resnet34_cifar", "resnet50_cifar" (3x3/1 conv stem, no
// pool); He et al. 2016 CIFAR ResNets "resnet8", "resnet20", "resnet32", "resnet44",
// "resnet56" (16/32/64 channels, 6n+2 layers; the paper's parameter-free option-A shortcuts by
// default, 1x1 projections (option B) on request; shortcuts.h); "airbench94" and "airbench95"
// (K. Jordan's airbench networks, no residuals, widths 64/256/256 and 128/384/384; airbench.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "core/tensor.h"
#include "nn/parameter_store.h"
#include "nn/shortcut_kind.h"
#include "nn/shortcuts.h"

namespace dp::nn {

struct ModelSpec {
  std::string arch = "resnet20";
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  bool zero_init_residual = false;  // last BN gamma of every block starts at 0
  uint64_t seed = 0;                // initial weights are a function of (arch, seed) alone
  int64_t base_width = 0;           // channels of the first stage; 0 = the arch's own (64 / 16)
  // Where a block's shape changes. arch_default: A for resnet8/20/32/44/56, B (torchvision's,
  // the only one there) for the rest. make_model resolves it, so Model::spec() says A or B.
  ShortcutKind shortcut = ShortcutKind::arch_default;
  float bn_eps = 1e-5f;
  float bn_momentum = 0.1f;
};

class Model {
 public:
  virtual ~Model() = default;

  // images {N, H, W, C} f32 on the backend's device -> logits {N, num_classes}. In train mode
  // BN uses batch statistics and updates its running statistics.
  virtual const Tensor& forward(const Tensor& images, bool train) = 0;
  const Tensor& forward(const Tensor& images) { return forward(images, train_); }
  // dlogits {N, num_classes} -> every element of grads() (parameter gradients are
  // overwritten, not accumulated). Needs a train-mode forward on the same batch first.
  virtual void backward(const Tensor& dlogits) = 0;
  // Gradient w.r.t. the images of the last backward; only when enabled (costs a pass).
  virtual void set_input_grad(bool enabled) = 0;
  virtual const Tensor& input_grad() const = 0;

  void set_train(bool train) { train_ = train; }
  bool training() const { return train_; }

  ParameterStore& store() { return *store_; }
  const ParameterStore& store() const { return *store_; }
  Tensor& params() { return store_->params(); }
  Tensor& grads() { return store_->grads(); }
  Tensor& buffers() { return store_->buffers(); }
  const ModelSpec& spec() const { return spec_; }

 protected:
  Model(const ModelSpec& spec, Backend& backend)
      : spec_(spec), store_(std::make_unique<ParameterStore>(backend)) {}
  // Every forward's first check: images {N, H, W, the spec's channels}.
  void check_images(const Tensor& images) const {
    DP_CHECK(images.rank() == 4 && images.dim(3) == spec_.in_channels,
             "model expects images {{N,H,W,{}}}, got {}", spec_.in_channels,
             to_string(images.shape()));
  }
  ModelSpec spec_;
  std::unique_ptr<ParameterStore> store_;
  bool train_ = true;
};

// Builds, registers, finalizes and initialises (torchvision init from spec.seed).
// Throws UsageError for an unknown arch or bad option.
std::unique_ptr<Model> make_model(const ModelSpec& spec, Backend& backend);
// Empty where `arch` takes h x w images; else why it does not. The ResNets take any size (their
// global pool); airbench's flatten needs its last 3x3 pool to see a 3x3 to 5x5 map, so 25 to 48
// pixels a side (CIFAR's 32 gives 3x3).
std::string input_size_problem(const std::string& arch, int64_t h, int64_t w);
// Whether `arch` is built from bottleneck blocks (false for basic blocks and unknown names).
bool uses_bottleneck_blocks(const std::string& arch);
// Whether `arch` is an airbench network (airbench.h; no residuals).
bool is_airbench(const std::string& arch);
// Whether `arch` is built of residual blocks (the zoo's ResNets; false for unknown names), the
// question an option about them (--zero-init-residual) asks of a network.
bool has_residual_blocks(const std::string& arch);
std::vector<std::string> model_names();
// Empty where `arch` is a model of the zoo; else why not, listing the known ones.
std::string unknown_arch_problem(const std::string& arch);

// A or B for `arch`: arch_default becomes the arch's own; A on an arch that has only B (the
// torchvision ones) or an unknown arch is a UsageError naming --shortcut / the arch.
ShortcutKind resolve_shortcut(const std::string& arch, ShortcutKind kind);

}  // namespace dp::nn
