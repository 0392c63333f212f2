#include "train/backend_choice.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "backend/cuda/device_probe.h"
#include "comm/communicator.h"
#include "core/env_switch.h"
#include "core/error.h"
#include "train/cpu_backend_setup.h"

namespace dp {

namespace {

BackendChoice cpu_backend(int threads, int local_rank, int local_size, bool pin,
                          const std::string& arch, bool bf16, const std::string& why) {
  const bool blocked = cpu_blocked_activations(arch, bf16);
  const CpuBf16 mode = cpu_bf16_mode(arch, bf16);
  const CpuTeam team = take_cpu_team(threads, pin, local_rank, local_size);
  auto backend = make_cpu_backend(team.threads, blocked, mode);
  return {std::move(backend),
          fmt::format("cpu backend, {}, {} {}activations{} ({})", team.description,
                      blocked ? "nChw16c" : "NHWC", mode == CpuBf16::activations ? "bf16 " : "",
                      bf16 ? ", bf16 convolutions" : "", why),
          bf16};
}

// Why --device auto's CPU fallback runs in fp32 where the precision asked for more.
std::string cpu_fallback_note(const CudaOptions& cuda, bool cpu_bf16) {
  if (cuda.allow_tf32) return "; --precision tf32 applies to the CUDA backend, fp32 here";
  if (cuda.mixed_bf16 && !cpu_bf16)
    return "; --precision bf16: this CPU has neither AVX512-BF16 nor AMX, fp32 here";
  return "";
}

}  // namespace

CudaOptions cuda_options(Precision precision, bool deterministic) {
  CudaOptions o;
  o.allow_tf32 = precision == Precision::tf32;
  o.mixed_bf16 = precision == Precision::bf16;
  o.deterministic = deterministic;
  // Timed algorithm search may pick differently from one process to the next; deterministic
  // runs take cuDNN's heuristic choice so that two runs (or train and eval) compute alike,
  // as PyTorch's cudnn.deterministic with cudnn.benchmark off.
  o.benchmark_algorithms = !deterministic;
  if (const char* file = std::getenv("DPTRAIN_CUDNN_ALGORITHM_CACHE")) o.algorithm_cache = file;
  o.batchnorm_persistent = cudnn_batchnorm_persistent_from_environment();
  return o;
}

bool cudnn_batchnorm_persistent_from_environment() {
  return !env_switch("DPTRAIN_CUDNN_BN", "persistent", "spatial");
}

BackendChoice choose_backend(const DeviceOptions& o, int local_rank, int local_size,
                             const std::string& arch) {
  return choose_backend(o.device, o.threads, local_rank, local_size,
                        cuda_options(o.precision, o.deterministic), o.pin_threads, arch);
}

BackendChoice choose_backend(DeviceRequest device, int threads, int local_rank, int local_size,
                             const CudaOptions& cuda, bool pin_threads, const std::string& arch) {
  if (device == DeviceRequest::cpu) {
    if (cuda.allow_tf32)
      throw UsageError(
          "option --precision: tf32 needs the CUDA backend; --device cpu has fp32 "
          "and bf16");
    return cpu_backend(threads, local_rank, local_size, pin_threads, arch, cuda.mixed_bf16,
                       "--device cpu");
  }
  // auto without a usable GPU: bf16 where this CPU has it, else fp32 with a note.
  const bool cpu_bf16 = cuda.mixed_bf16 && cpu_has_native_bf16();
  const std::string cpu_note = cpu_fallback_note(cuda, cpu_bf16);
  CudaProbe probe = probe_cuda();
  if (probe.device_count == 0) {
    if (device == DeviceRequest::cuda)
      throw UsageError(fmt::format("option --device cuda: no usable GPU ({})", probe.reason));
    return cpu_backend(threads, local_rank, local_size, pin_threads, arch, cpu_bf16,
                       fmt::format("no GPU: {}{}", probe.reason, cpu_note));
  }
#ifdef DPTRAIN_WITH_CUDA
  CudaOptions options = cuda;
  options.device = std::max(0, local_rank) % probe.device_count;
  const std::string why = fmt::format("{}: GPU {} of {} for local rank {}",
                                      device == DeviceRequest::cuda ? "--device cuda" : "auto",
                                      options.device, probe.device_count, local_rank);
  try {
    auto backend = make_cuda_backend(options);
    std::string name = backend->name();
    return {std::move(backend), fmt::format("{} ({})", name, why)};
  } catch (const Error& e) {
    if (device == DeviceRequest::cuda) throw;
    // auto: a GPU that cannot be used (driver too old, out of memory) is not fatal.
    return cpu_backend(threads, local_rank, local_size, pin_threads, arch, cpu_bf16,
                       fmt::format("auto: {} GPU(s) found, but the CUDA backend failed: {}{}",
                                   probe.device_count, e.what(), cpu_note));
  }
#else
  (void)cuda;
  if (device == DeviceRequest::cuda)
    throw UsageError("option --device cuda: this build has no CUDA backend; use --device cpu");
  return cpu_backend(threads, local_rank, local_size, pin_threads, arch, cpu_bf16,
                     fmt::format("{} GPU(s) found, but this build has no CUDA backend{}",
                                 probe.device_count, cpu_note));
#endif
}

void check_same_device(Device mine, const std::string& reason, Communicator& comm, bool cpu_bf16) {
  const char* names[] = {"cpu", "cuda", "cpu bf16"};
  const double code = mine == Device::cuda ? 1.0 : cpu_bf16 ? 2.0 : 0.0;
  std::vector<double> all(comm.size());
  comm.allgather(&code, 1, all.data());
  if (std::all_of(all.begin(), all.end(), [&](double d) { return d == all[0]; })) return;
  std::string devices;
  for (size_t r = 0; r < all.size(); ++r)
    devices += fmt::format("{}rank {} {}", r ? ", " : "", r, names[static_cast<int>(all[r])]);
  throw Error(ExitCode::communication,
              fmt::format("option --device: the ranks chose different backends ({}); this rank: "
                          "{}. Give every rank a usable GPU, or run with --device cpu (and "
                          "--precision fp32 where only some CPUs have bf16)",
                          devices, reason));
}

BackendChoice agree_on_backend(BackendChoice choice, Communicator& comm) {
  check_same_device(choice.backend->device(), choice.reason, comm, choice.cpu_bf16);
  return choice;
}

}  // namespace dp
