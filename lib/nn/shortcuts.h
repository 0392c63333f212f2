// The shortcut branch of a residual block where its shape changes (stride 2, or more channels);
// where it does not, the shortcut is the identity and no object exists.
// - Projection (He et al.'s option B, torchvision's "downsample"): 1x1 strided conv + BN,
//   registered as "<block>.downsample.0" / ".1".
// - SubsamplePad (option A, He et al. 2016's CIFAR networks): parameter-free; the input
//   subsampled by the stride (every other pixel, x[:, :, ::2, ::2] in NCHW) with the missing
//   channels zero-padded after the input's (as fb.resnet.torch's shortcutType 'A'; some
//   PyTorch ports pad half before and half after, a fixed channel permutation of this one).
//   Registers nothing, so its block's state_dict has no "downsample" keys.
#pragma once

#include <memory>
#include <string>

#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/layer.h"
#include "nn/reusable_buffer.h"
#include "nn/shortcut_kind.h"

namespace dp::nn {

class Shortcut {
 public:
  virtual ~Shortcut() = default;
  virtual const Tensor& forward(const Tensor& x, bool train) = 0;
  // The gradient w.r.t. the block's input, in a buffer the shortcut owns.
  virtual Tensor& backward(const Tensor& dy) = 0;
};

class Projection final : public Shortcut {
 public:
  Projection(ParameterStore& store, const std::string& block, int64_t in_channels,
             int64_t out_channels, int64_t stride, BatchNormOptions bn);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;

 private:
  Conv2d conv_;
  BatchNorm2d bn_;
};

class SubsamplePad final : public Shortcut {
 public:
  SubsamplePad(Backend& backend, int64_t out_channels, int64_t stride);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;

 private:
  SubsamplePadGeometry geometry(const Shape& x) const;
  Backend& backend_;
  int64_t out_channels_, stride_;
  Shape x_shape_;  // of the last forward: backward cannot tell h = 2*out_h from 2*out_h - 1
  ReusableBuffer y_, dx_;
};

// The shortcut a block from in_channels to out_channels at `stride` needs: null (identity)
// when the shape stays, else the projection (B) or the subsample-and-pad (A).
std::unique_ptr<Shortcut> make_shortcut(ShortcutKind kind, ParameterStore& store,
                                        const std::string& block, int64_t in_channels,
                                        int64_t out_channels, int64_t stride, BatchNormOptions bn);

}  // namespace dp::nn
