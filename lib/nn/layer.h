// The layer contract: forward keeps what backward needs (its input handle, saved statistics)
// and returns a reference to the layer's own output buffer, reused across steps; backward
// takes the gradient of that output, writes the parameter gradients into the flat gradient
// buffer (overwriting) and returns the layer's own input-gradient buffer. A caller may add
// into the returned gradient (residual blocks do) before passing it on.
// An evaluation-mode forward keeps nothing for backward, in particular no handle to its input:
// otherwise the last evaluation batch would stay alive until the next training forward drops
// it, a device-memory release in the middle of that step (inside a CUDA graph capture, which
// must then be abandoned).
#pragma once

#include "backend/backend.h"
#include "core/tensor.h"
#include "nn/parameter_store.h"

namespace dp::nn {

class Layer {
 public:
  virtual ~Layer() = default;
  virtual const Tensor& forward(const Tensor& x, bool train) = 0;
  virtual Tensor& backward(const Tensor& dy) = 0;
};

}  // namespace dp::nn
