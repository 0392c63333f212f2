#include "train/backend_choice.h"

#include <algorithm>
#include <thread>

#include "backend/cuda/device_probe.h"
#include "core/error.h"

namespace dp {

namespace {

BackendChoice cpu_backend(int threads, int local_size, const std::string& why) {
  if (threads == 0) {
    int cores = static_cast<int>(std::thread::hardware_concurrency());
    threads = std::max(1, cores / std::max(1, local_size));
  }
  return {make_cpu_backend(threads), fmt::format("cpu backend, {} threads ({})", threads, why)};
}

}  // namespace

CudaOptions cuda_options(const std::string& precision, bool deterministic) {
  CudaOptions o;
  if (precision == "tf32")
    o.allow_tf32 = true;
  else if (precision == "bf16")
    throw UsageError("option --precision: bf16 mixed precision is not implemented yet; use fp32 "
                     "or tf32");
  else if (precision != "fp32")
    throw UsageError(fmt::format("option --precision: '{}' must be fp32 or tf32", precision));
  o.deterministic = deterministic;
  return o;
}

BackendChoice choose_backend(const std::string& device, int threads, int local_rank,
                             int local_size, const CudaOptions& cuda) {
  if (device != "auto" && device != "cpu" && device != "cuda")
    throw UsageError(fmt::format("option --device: '{}' must be auto, cpu or cuda", device));
  if (device == "cpu") return cpu_backend(threads, local_size, "--device cpu");
  CudaProbe probe = probe_cuda();
  if (probe.device_count == 0) {
    if (device == "cuda")
      throw UsageError(fmt::format("option --device cuda: no usable GPU ({})", probe.reason));
    return cpu_backend(threads, local_size, fmt::format("no GPU: {}", probe.reason));
  }
#ifdef DPTRAIN_WITH_CUDA
  CudaOptions options = cuda;
  options.device = std::max(0, local_rank) % probe.device_count;
  const std::string why =
      fmt::format("{}: GPU {} of {} for local rank {}", device == "cuda" ? "--device cuda" : "auto",
                  options.device, probe.device_count, local_rank);
  if (device == "cuda") {
    auto backend = make_cuda_backend(options);
    std::string name = backend->name();
    return {std::move(backend), fmt::format("{} ({})", name, why)};
  }
  try {
    auto backend = make_cuda_backend(options);
    std::string name = backend->name();
    return {std::move(backend), fmt::format("{} ({})", name, why)};
  } catch (const Error& e) {
    // auto: a GPU that cannot be used (driver too old, out of memory) is not fatal.
    return cpu_backend(threads, local_size,
                       fmt::format("auto: {} GPU(s) found, but the CUDA backend failed: {}",
                                   probe.device_count, e.what()));
  }
#else
  (void)cuda;
  (void)local_rank;
  if (device == "cuda")
    throw UsageError("option --device cuda: this build has no CUDA backend; use --device cpu");
  return cpu_backend(threads, local_size,
                     fmt::format("{} GPU(s) found, but this build has no CUDA backend",
                                 probe.device_count));
#endif
}

}  // namespace dp
