// Where an augmented image's output pixel comes from and the value it becomes: the one
// definition the host Augmenter (lib/data/augment.cpp), the CPU backend's augment_batch and the
// CUDA kernel share, so all three give the same bits. Header-only, host and device.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace dp::augment {

// torch's 'reflect' padding of index i into [0, n) (the edge pixel not repeated): -i before
// 0, 2 (n - 1) - i past the end; valid for padding < n.
DP_HOST_DEVICE inline int64_t reflect_index(int64_t i, int64_t n) {
  return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
}

// The source row (or column) of output row `out` of a crop at `offset` (in [0, 2 pad]) of the
// image padded by `pad` on each side: in [0, n) for an image pixel, outside it for a padding
// pixel (zero padding; reflected padding always lands inside).
DP_HOST_DEVICE inline int64_t source_index(int64_t out, int64_t offset, int64_t pad, int64_t n,
                                           bool reflect) {
  const int64_t i = out + offset - pad;
  return reflect ? reflect_index(i, n) : i;
}

// A u8 channel value (a padding pixel is 0) as torchvision's ToTensor and Normalize compute it
// in float: v / 255, then (x - mean) / std when normalising.
DP_HOST_DEVICE inline float pixel_value(int v, float mean, float std, bool normalize) {
  const float x = static_cast<float>(v) / 255.0f;
  return normalize ? (x - mean) / std : x;
}

}  // namespace dp::augment
