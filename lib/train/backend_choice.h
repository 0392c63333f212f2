// Picks the compute backend for --device auto|cpu|cuda and says why, so a batch log shows
// plainly whether a run used the GPU. A rank uses GPU local_rank % device_count.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/make_cuda_backend.h"
#include "train/device_options.h"

namespace dp {

class Communicator;

struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string reason;
  bool cpu_bf16 = false;  // the CPU backend with bf16 convolutions
};

// `threads` = 0: this rank's share of the machine's cores (cores / ranks on the node).
// `cuda`: options for the CUDA backend; its `device` is replaced by this rank's GPU.
// --precision and --deterministic as CUDA backend options: fp32 (strict FP32 arithmetic),
// tf32 (TF32 tensor cores for convolutions and GEMMs, PyTorch's cuDNN default) or bf16 (mixed
// precision, as PyTorch's autocast to bfloat16). The CPU backend takes bf16 too, as bf16
// convolutions (make_cpu_backend), and computes everything else in fp32; the reason string of
// a CPU choice says when it computes in fp32 where tf32 or bf16 was asked.
// DPTRAIN_CUDNN_ALGORITHM_CACHE=FILE names its algorithm_cache.
CudaOptions cuda_options(Precision precision, bool deterministic);

// DPTRAIN_CUDNN_BN=persistent|spatial (unset: persistent): CudaOptions::batchnorm_persistent.
bool cudnn_batchnorm_persistent_from_environment();

// `pin_threads`: bind the CPU backend's threads to cores (cpu::pin_openmp_threads).
// `arch`: the network; a CPU backend takes its activation layout (cpu_blocked_activations)
// from it and from whether this choice runs bf16 convolutions, decided here once.
BackendChoice choose_backend(DeviceRequest device, int threads, int local_rank, int local_size,
                             const CudaOptions& cuda, bool pin_threads, const std::string& arch);

// The same from the command's device options (validate_device_options first).
BackendChoice choose_backend(const DeviceOptions& o, int local_rank, int local_size,
                             const std::string& arch);

// Collective: the ranks compare the devices they chose. Under --device auto a rank whose CUDA
// initialisation failed falls back to the CPU while its peers take the GPU, and their next
// collectives (NCCL's, or ones on device memory) would not match; so before any of them, a
// disagreement ends every rank with a communication error naming each rank's device and this
// rank's reason. Returns `choice` when all agree.
BackendChoice agree_on_backend(BackendChoice choice, Communicator& comm);
// The comparison itself: `mine` is this rank's device, `reason` what the error says of it.
// `cpu_bf16`: this rank's CPU backend runs bf16 convolutions (ranks must agree on it too).
void check_same_device(Device mine, const std::string& reason, Communicator& comm,
                       bool cpu_bf16 = false);

}  // namespace dp
