#include "train/backend_choice.h"

#include <algorithm>
#include <thread>

#include "backend/cuda/device_probe.h"
#include "core/error.h"

namespace dp {

BackendChoice choose_backend(const std::string& device, int threads, int local_size) {
  if (threads == 0) {
    int cores = static_cast<int>(std::thread::hardware_concurrency());
    threads = std::max(1, cores / std::max(1, local_size));
  }
  CudaProbe probe = probe_cuda();
  if (device == "cuda") {
    if (probe.device_count == 0)
      throw UsageError(fmt::format("option --device cuda: no usable GPU ({})", probe.reason));
    throw UsageError(
        "option --device cuda: this build has no CUDA backend yet; use --device cpu");
  }
  std::string reason;
  if (device == "cpu") {
    reason = "--device cpu";
  } else if (probe.device_count > 0) {
    reason = fmt::format("{} GPU(s) found, but this build has no CUDA backend yet", probe.device_count);
  } else {
    reason = fmt::format("no GPU: {}", probe.reason);
  }
  return {make_cpu_backend(threads), fmt::format("cpu backend, {} threads ({})", threads, reason)};
}

}  // namespace dp
