// Convolution on cuDNN's legacy API: NHWC activations, filters in cuDNN's NHWC filter layout
// {O, KH, KW, I} (PyTorch's {O, I, KH, KW} weights are transposed on the way in and the
// weight gradient on the way out; an f32 1x1 filter needs neither). The algorithm of each
// (shape, element type, direction) is chosen once (timed by cudnnFind*Ex, or cuDNN's
// heuristic) and cached with its descriptors and workspace size; timed choices also in the
// file CudaOptions::algorithm_cache names, where a later process finds them.
//
// `type` is the activations' element type. With bf16 (mixed precision) the f32 master weights
// are rounded to bf16 for each call, as PyTorch's autocast casts them, cuDNN accumulates in
// f32, and the bf16 weight gradient is widened into the f32 gradient buffer.
#pragma once

#include <map>
#include <tuple>

#include "backend/backend.h"
#include "backend/cuda/algorithm_cache_file.h"
#include "backend/cuda/cuda_context.h"

namespace dp::cuda {

class CudnnConv {
 public:
  explicit CudnnConv(CudaContext& ctx);
  void forward(const Conv2dGeometry& g, DType type, const void* x, const float* w, void* y);
  void backward_data(const Conv2dGeometry& g, DType type, const float* w, const void* dy,
                     void* dx);
  void backward_filter(const Conv2dGeometry& g, DType type, const void* x, const void* dy,
                       float* dw);
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
  using Key = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t>;
  // The cached entry; on a miss, find_algorithm chooses the algorithm (and may run
  // convolutions on the given buffers).
  Entry& entry(const Conv2dGeometry& g, DType type, Direction d, const void* x, const void* w,
               const void* y);
  // A new entry's descriptors, the convolution's math type set to `math`; no algorithm yet.
  Entry descriptors(const Conv2dGeometry& g, DType type, cudnnMathType_t math);
  struct Algorithm {
    int algo;  // -1: cuDNN offers none that is acceptable
    cudnnMathType_t math;
  };
  // The fastest acceptable algorithm for direction d (deterministic where the options ask,
  // within the search workspace): timed on the given buffers (cudnnFind*Ex) or cuDNN's
  // heuristic choice, with the math type it ran with (`math` where none is found).
  Algorithm find_algorithm(const Entry& e, Direction d, const void* x, const void* w,
                           const void* y, cudnnMathType_t math);
  // A timed search's choice for `key` from the algorithm cache file, where it has one that
  // cuDNN still accepts for this entry within the search's workspace limit (algo -1, the
  // descriptor's math left `math`, otherwise).
  Algorithm saved_algorithm(const Entry& e, Direction d, const std::string& key, bool strict_fp32,
                            cudnnMathType_t math);
  // The workspace running `algo` in direction d needs; a status other than success where
  // cuDNN refuses the algorithm for this entry.
  cudnnStatus_t query_workspace(const Entry& e, Direction d, int algo, size_t* bytes);
  // The weights in cuDNN's filter layout and element type (the input itself for f32 1x1).
  const void* filter_layout(const Conv2dGeometry& g, DType type, const float* w);

  CudaContext& ctx_;
  std::map<Key, Entry> cache_;
  AlgorithmCacheFile saved_;  // timed choices across processes
};

}  // namespace dp::cuda
