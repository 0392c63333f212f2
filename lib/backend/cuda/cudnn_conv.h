// Convolution on cuDNN's legacy API: NHWC activations, filters in cuDNN's NHWC filter layout
// {O, KH, KW, I} (PyTorch's {O, I, KH, KW} weights are transposed on the way in and the
// weight gradient on the way out; a 1x1 filter needs neither). The algorithm of each
// (shape, direction) is chosen once (timed by cudnnFind*Ex, or cuDNN's heuristic) and cached
// with its descriptors and workspace size.
#pragma once

#include <map>
#include <tuple>

#include "backend/backend.h"
#include "backend/cuda/cuda_context.h"

namespace dp::cuda {

class CudnnConv {
 public:
  explicit CudnnConv(CudaContext& ctx) : ctx_(ctx) {}
  void forward(const Conv2dGeometry& g, const float* x, const float* w, float* y);
  void backward_data(const Conv2dGeometry& g, const float* w, const float* dy, float* dx);
  void backward_filter(const Conv2dGeometry& g, const float* x, const float* dy, float* dw);
  size_t cached_entries() const { return cache_.size(); }

 private:
  enum class Direction { forward, backward_data, backward_filter };
  struct Entry {
    TensorDesc x, y;
    FilterDesc w;
    ConvDesc conv;
    int algo = 0;
    size_t workspace = 0;
  };
  using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t>;
  // The cached entry; on a miss, `find` chooses the algorithm (and may run convolutions on
  // the given buffers).
  Entry& entry(const Conv2dGeometry& g, Direction d, const void* x, const void* w,
               const void* y);
  // The weights in cuDNN's filter layout (the input itself for 1x1 filters).
  const float* filter_layout(const Conv2dGeometry& g, const float* w);

  CudaContext& ctx_;
  std::map<Key, Entry> cache_;
};

}  // namespace dp::cuda
