#include "backend/cuda/cudnn_conv.h"

#include <algorithm>
#include <vector>

#include "backend/cuda/checked_launch.h"
#include "backend/cuda/kernels.h"

namespace dp::cuda {
namespace {

std::string describe(const Conv2dGeometry& g) {
  return fmt::format("n{} {}x{} {}->{} k{} s{} p{}", g.n, g.h, g.w, g.c_in, g.c_out, g.kernel,
                     g.stride, g.pad);
}

// The fastest acceptable result of a cudnnFind*/cudnnGet* call (they come sorted).
template <typename Perf>
const Perf* pick(const std::vector<Perf>& perfs, int count, bool deterministic, size_t limit) {
  for (int i = 0; i < count; ++i) {
    const Perf& p = perfs[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > limit) continue;
    if (deterministic && p.determinism != CUDNN_DETERMINISTIC) continue;
    return &p;
  }
  return nullptr;
}

// Workspace offered to algorithm search: a quarter of the free memory, at most 1 GiB.
size_t search_limit() {
  size_t free_bytes = 0, total = 0;
  DP_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  return std::min<size_t>(free_bytes / 4, size_t(1) << 30);
}

// The algorithm cache file's key of a convolution: the in-process cache's key as one token.
std::string saved_key(int direction, int type, const Conv2dGeometry& g) {
  return fmt::format("{},{},{},{},{},{},{},{},{},{}", direction, type, g.n, g.h, g.w, g.c_in,
                     g.c_out, g.kernel, g.stride, g.pad);
}

// What a timed choice depends on besides the shapes and types in its key.
std::string saved_context(const CudaOptions& o) {
  cudaDeviceProp prop{};
  DP_CUDA_CHECK(cudaGetDeviceProperties(&prop, o.device));
  return fmt::format("{} (sm {}.{}), cuDNN {}, tf32 {}, deterministic {}", prop.name, prop.major,
                     prop.minor, cudnnGetVersion(), o.allow_tf32, o.deterministic);
}

// The algorithm cache file of these options; none (an empty path) without a timed search, as
// the heuristic's choices cost nothing to make again.
AlgorithmCacheFile saved_choices(const CudaOptions& o) {
  if (!o.benchmark_algorithms || o.algorithm_cache.empty()) return {"", ""};
  return {o.algorithm_cache, saved_context(o)};
}

}  // namespace

CudnnConv::CudnnConv(CudaContext& ctx) : ctx_(ctx), saved_(saved_choices(ctx.options)) {}

const void* CudnnConv::filter_layout(const Conv2dGeometry& g, DType type, const float* w) {
  if (g.kernel == 1 && type == DType::f32) return w;
  const int64_t count = g.c_out * g.c_in * g.kernel * g.kernel;
  void* out = ctx_.weights.get(ctx_.pool, count * dtype_size(type));
  checked_launch([&] {
    if (type == DType::bf16)
      kernels::oihw_to_ohwi(w, static_cast<kernels::bf16*>(out), g.c_out, g.c_in,
                            g.kernel * g.kernel, ctx_.s());
    else
      kernels::oihw_to_ohwi(w, static_cast<float*>(out), g.c_out, g.c_in, g.kernel * g.kernel,
                            ctx_.s());
  });
  return out;
}

CudnnConv::Entry& CudnnConv::entry(const Conv2dGeometry& g, DType type, Direction d,
                                   const void* x, const void* w, const void* y) {
  // cuDNN's convolution descriptor pads both sides alike (Backend::supports_conv_trim); checked
  // before the cache, whose key has no trim.
  DP_CHECK(g.trim == 0, "convolution {} with trim {}: cuDNN pads symmetrically", describe(g),
           g.trim);
  const Key key{static_cast<int>(d), static_cast<int>(type), g.n,      g.h,      g.w,
                g.c_in,              g.c_out,                g.kernel, g.stride, g.pad};
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;

  // bf16 runs on tensor cores (accumulating in f32: the convolution's compute type);
  // f32 is strict FMA unless TF32 is allowed.
  const bool strict_fp32 = type == DType::f32 && !ctx_.options.allow_tf32;
  const cudnnMathType_t math = type == DType::bf16   ? CUDNN_TENSOR_OP_MATH
                               : strict_fp32 ? CUDNN_FMA_MATH
                                             : CUDNN_DEFAULT_MATH;
  Entry e = descriptors(g, type, math);
  const std::string file_key = saved_key(static_cast<int>(d), static_cast<int>(type), g);
  Algorithm chosen = saved_algorithm(e, d, file_key, strict_fp32, math);
  if (chosen.algo < 0) {
    chosen = find_algorithm(e, d, x, w, y, math);
    if (chosen.algo >= 0 && ctx_.options.benchmark_algorithms)
      saved_.remember(file_key, {chosen.algo, static_cast<int>(chosen.math)});
  }
  if (chosen.algo < 0)
    throw Error(ExitCode::internal,
                fmt::format("cuDNN offers no {}usable algorithm for convolution {} ({})",
                            ctx_.options.deterministic ? "deterministic " : "", describe(g),
                            d == Direction::forward         ? "forward"
                            : d == Direction::backward_data ? "backward data"
                                                            : "backward filter"));
  // Run with the math the timing used; strict FP32 stays FMA whatever a result reports.
  if (!strict_fp32) DP_CUDNN_CHECK(cudnnSetConvolutionMathType(e.conv.get(), chosen.math));
  e.algo = chosen.algo;
  DP_CUDNN_CHECK(query_workspace(e, d, chosen.algo, &e.workspace));
  return cache_.emplace(key, std::move(e)).first->second;
}

CudnnConv::Entry CudnnConv::descriptors(const Conv2dGeometry& g, DType type,
                                        cudnnMathType_t math) {
  Entry e;
  e.x = nhwc_desc(g.n, g.c_in, g.h, g.w, type);
  e.y = nhwc_desc(g.n, g.c_out, g.out_h(), g.out_w(), type);
  e.w = make_filter_desc();
  DP_CUDNN_CHECK(cudnnSetFilter4dDescriptor(e.w.get(), cudnn_type(type), CUDNN_TENSOR_NHWC,
                                            static_cast<int>(g.c_out), static_cast<int>(g.c_in),
                                            static_cast<int>(g.kernel),
                                            static_cast<int>(g.kernel)));
  e.conv = make_conv_desc();
  const int pad = static_cast<int>(g.pad), stride = static_cast<int>(g.stride);
  DP_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(e.conv.get(), pad, pad, stride, stride, 1, 1,
                                                 CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  DP_CUDNN_CHECK(cudnnSetConvolutionMathType(e.conv.get(), math));
  return e;
}

CudnnConv::Algorithm CudnnConv::find_algorithm(const Entry& e, Direction d, const void* x,
                                               const void* w, const void* y,
                                               cudnnMathType_t math) {
  const bool timed = ctx_.options.benchmark_algorithms;
  const bool deterministic = ctx_.options.deterministic;
  const size_t limit = search_limit();
  // Its own memory, freed on return: from the pool, the block (up to 1 GiB, of a size nothing
  // else asks for) would stay cached unused, and giving it back would count as a release that
  // invalidates every captured graph.
  DeviceArray<uint8_t> search_space;
  if (timed) search_space = make_device_array<uint8_t>(limit);
  constexpr int kMax = 16;
  cudnnHandle_t h = ctx_.cudnn.get();
  // Find*Ex overwrites its output; the op that asked runs after and writes it again.
  auto* out =
      const_cast<void*>(d == Direction::forward ? y : d == Direction::backward_data ? x : w);
  int count = 0;
  Algorithm chosen{-1, math};
  auto take = [&](const auto& perfs) {
    if (auto* p = pick(perfs, count, deterministic, limit)) chosen = {p->algo, p->mathType};
  };
  if (d == Direction::forward) {
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perfs(kMax);
    if (timed)
      DP_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
          h, e.x.get(), x, e.w.get(), w, e.conv.get(), e.y.get(), out, kMax, &count,
          perfs.data(), search_space.get(), limit));
    else
      DP_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, e.x.get(), e.w.get(), e.conv.get(),
                                                            e.y.get(), kMax, &count, perfs.data()));
    take(perfs);
  } else if (d == Direction::backward_data) {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perfs(kMax);
    if (timed)
      DP_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
          h, e.w.get(), w, e.y.get(), y, e.conv.get(), e.x.get(), out, kMax, &count,
          perfs.data(), search_space.get(), limit));
    else
      DP_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h, e.w.get(), e.y.get(), e.conv.get(), e.x.get(), kMax, &count, perfs.data()));
    take(perfs);
  } else {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perfs(kMax);
    if (timed)
      DP_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
          h, e.x.get(), x, e.y.get(), y, e.conv.get(), e.w.get(), out, kMax, &count,
          perfs.data(), search_space.get(), limit));
    else
      DP_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h, e.x.get(), e.y.get(), e.conv.get(), e.w.get(), kMax, &count, perfs.data()));
    take(perfs);
  }
  return chosen;
}

CudnnConv::Algorithm CudnnConv::saved_algorithm(const Entry& e, Direction d, const std::string& key,
                                                bool strict_fp32, cudnnMathType_t math) {
  const Algorithm none{-1, math};
  const std::optional<AlgorithmCacheFile::Choice> saved = saved_.find(key);
  if (!saved) return none;
  const auto saved_math = static_cast<cudnnMathType_t>(saved->math);
  if (saved_math != CUDNN_DEFAULT_MATH && saved_math != CUDNN_TENSOR_OP_MATH &&
      saved_math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && saved_math != CUDNN_FMA_MATH)
    return none;
  // Queried as it would run (strict FP32 stays FMA), and within the workspace a search here
  // would allow; a choice that fails either leaves the descriptor as it was, for the search.
  if (!strict_fp32 && cudnnSetConvolutionMathType(e.conv.get(), saved_math) != CUDNN_STATUS_SUCCESS)
    return none;
  size_t bytes = 0;
  if (query_workspace(e, d, saved->algorithm, &bytes) == CUDNN_STATUS_SUCCESS &&
      bytes <= search_limit())
    return {saved->algorithm, saved_math};
  if (!strict_fp32) DP_CUDNN_CHECK(cudnnSetConvolutionMathType(e.conv.get(), math));
  return none;
}

cudnnStatus_t CudnnConv::query_workspace(const Entry& e, Direction d, int algo, size_t* bytes) {
  cudnnHandle_t h = ctx_.cudnn.get();
  if (d == Direction::forward)
    return cudnnGetConvolutionForwardWorkspaceSize(h, e.x.get(), e.w.get(), e.conv.get(), e.y.get(),
                                                   static_cast<cudnnConvolutionFwdAlgo_t>(algo),
                                                   bytes);
  if (d == Direction::backward_data)
    return cudnnGetConvolutionBackwardDataWorkspaceSize(
        h, e.w.get(), e.y.get(), e.conv.get(), e.x.get(),
        static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), bytes);
  return cudnnGetConvolutionBackwardFilterWorkspaceSize(
      h, e.x.get(), e.y.get(), e.conv.get(), e.w.get(),
      static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), bytes);
}

void CudnnConv::forward(const Conv2dGeometry& g, DType type, const void* x, const float* w,
                        void* y) {
  const void* wf = filter_layout(g, type, w);
  Entry& e = entry(g, type, Direction::forward, x, wf, y);
  void* ws = e.workspace ? ctx_.workspace.get(ctx_.pool, e.workspace) : nullptr;
  const float one = 1.f, zero = 0.f;
  DP_CUDNN_CHECK(cudnnConvolutionForward(ctx_.cudnn.get(), &one, e.x.get(), x, e.w.get(), wf,
                                         e.conv.get(),
                                         static_cast<cudnnConvolutionFwdAlgo_t>(e.algo), ws,
                                         e.workspace, &zero, e.y.get(), y));
}

void CudnnConv::backward_data(const Conv2dGeometry& g, DType type, const float* w,
                              const void* dy, void* dx) {
  const void* wf = filter_layout(g, type, w);
  Entry& e = entry(g, type, Direction::backward_data, dx, wf, dy);
  void* ws = e.workspace ? ctx_.workspace.get(ctx_.pool, e.workspace) : nullptr;
  const float one = 1.f, zero = 0.f;
  DP_CUDNN_CHECK(cudnnConvolutionBackwardData(
      ctx_.cudnn.get(), &one, e.w.get(), wf, e.y.get(), dy, e.conv.get(),
      static_cast<cudnnConvolutionBwdDataAlgo_t>(e.algo), ws, e.workspace, &zero, e.x.get(), dx));
}

void CudnnConv::backward_filter(const Conv2dGeometry& g, DType type, const void* x,
                                const void* dy, float* dw) {
  // f32 1x1: the gradient lands in place; otherwise in cuDNN's layout and the activations'
  // type, then transposed and widened into the f32 gradient.
  const bool in_place = g.kernel == 1 && type == DType::f32;
  void* dwf = dw;
  if (!in_place)
    dwf = ctx_.weights.get(ctx_.pool, g.c_out * g.c_in * g.kernel * g.kernel * dtype_size(type));
  Entry& e = entry(g, type, Direction::backward_filter, x, dwf, dy);
  void* ws = e.workspace ? ctx_.workspace.get(ctx_.pool, e.workspace) : nullptr;
  const float one = 1.f, zero = 0.f;
  DP_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      ctx_.cudnn.get(), &one, e.x.get(), x, e.y.get(), dy, e.conv.get(),
      static_cast<cudnnConvolutionBwdFilterAlgo_t>(e.algo), ws, e.workspace, &zero, e.w.get(),
      dwf));
  if (in_place) return;
  checked_launch([&] {
    if (type == DType::bf16)
      kernels::ohwi_to_oihw(static_cast<const kernels::bf16*>(dwf), dw, g.c_out, g.c_in,
                            g.kernel * g.kernel, ctx_.s());
    else
      kernels::ohwi_to_oihw(static_cast<const float*>(dwf), dw, g.c_out, g.c_in,
                            g.kernel * g.kernel, ctx_.s());
  });
}

}  // namespace dp::cuda
