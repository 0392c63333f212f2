// torch.optim.SGD's update of one element: the hyperparameters a step runs with and the
// arithmetic that the CPU backend's loop and the CUDA kernel share, so both compute alike.
#pragma once

#include "core/host_device.h"

namespace dp {

struct SgdHyper {
  float lr = 0.1f;
  float momentum = 0.9f;
  // A double, as torch's Python float: the buffer's factor 1 - dampening is computed in double
  // and rounded to float once, as torch's `alpha=1 - dampening` is (1.f - 0.9f is 0.10000002f
  // where torch uses 0.1f).
  double dampening = 0.0;
  float weight_decay = 0.0f;
  bool nesterov = false;
  // The buffer's first update, where torch.optim.SGD creates it as buf = d (no m*buf and no
  // dampening); afterwards buf = m*buf + (1 - dampening)*d. The optimizer sets it from its
  // count of updates, which a resumed run restores, so it is true exactly once per run.
  bool first_step = false;
};

// The new value of weight w with gradient g: d = g + weight_decay * decay * w (decay: 1, or 0
// where the decay mask exempts w), with momentum through the buffer element `buf` (updated in
// place; untouched without), Nesterov's look-ahead where set, then w - lr * d.
// A loop over elements vectorises when each thread passes its own copy of `h` (else the
// compiler cannot tell its fields from the floats the loop stores) and a loop-invariant
// `momentum`.
DP_HOST_DEVICE inline float sgd_update(const SgdHyper& h, float w, float g, float decay,
                                       bool momentum, float& buf) {
  float d = g + h.weight_decay * decay * w;
  if (momentum) {
    const float keep = static_cast<float>(1.0 - h.dampening);
    const float b = h.first_step ? d : h.momentum * buf + keep * d;
    buf = b;
    d = h.nesterov ? d + h.momentum * b : b;
  }
  return w - h.lr * d;
}

}  // namespace dp
