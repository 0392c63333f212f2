#include "backend/cuda/cuda_graph.h"

namespace dp::cuda {

bool CudaGraph::replay() {
  if (pool_->releases() != releases_) return false;
  DP_CUDA_CHECK(cudaGraphLaunch(exec_.get(), stream_));
  return true;
}

std::unique_ptr<CapturedWork> capture_graph(cudaStream_t stream,
                                            const std::shared_ptr<DeviceAllocator>& pool,
                                            const std::function<void()>& work) {
  const uint64_t releases = pool->releases();
  // Relaxed mode: the caching allocator may have to cudaMalloc a block inside the capture (see
  // tests/bench/results/code-measurements-backend.md), which global and thread-local modes
  // refuse. The graph keeps that block's address, as it keeps every cached block's: the release
  // check below and in replay() covers both. Nothing here synchronises, and the loader's
  // threads never touch CUDA.
  DP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  struct Capturing {  // the pool frees no cached block while the capture runs
    DeviceAllocator& pool;
    explicit Capturing(DeviceAllocator& p) : pool(p) { pool.set_capturing(true); }
    ~Capturing() { pool.set_capturing(false); }
  } capturing(*pool);
  try {
    work();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    (void)cudaStreamEndCapture(stream, &broken);  // leaves capture mode whatever went wrong
    const Graph discarded(broken);
    (void)cudaGetLastError();
    throw;
  }
  // A failure from here on is thrown for the caller to run the work eagerly instead: the
  // runtime's last error is cleared first, or the next eager launch's check would report it.
  const auto check = [](cudaError_t status, int line, const char* call) {
    if (status == cudaSuccess) return;
    (void)cudaGetLastError();
    throw_cuda_error(status, __FILE__, line, call);
  };
  cudaGraph_t raw = nullptr;
  check(cudaStreamEndCapture(stream, &raw), __LINE__, "cudaStreamEndCapture");
  Graph graph(raw);
  DP_CHECK(pool->releases() == releases,
           "CUDA graph capture: the captured work released device memory it may have used");
  cudaGraphExec_t exec = nullptr;
  check(cudaGraphInstantiate(&exec, graph.get(), 0), __LINE__, "cudaGraphInstantiate");
  return std::make_unique<CudaGraph>(GraphExec(exec), stream, pool, releases);
}

}  // namespace dp::cuda
