// Picks the compute backend for --device auto|cpu|cuda and says why, so a batch log shows
// plainly whether a run used the GPU. A rank uses GPU local_rank % device_count.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/make_cuda_backend.h"

namespace dp {

class Communicator;

struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string reason;
};

// `threads` = 0: this rank's share of the machine's cores (cores / ranks on the node).
// `cuda`: options for the CUDA backend; its `device` is replaced by this rank's GPU.
// --precision and --deterministic as CUDA backend options: fp32 (strict FP32 arithmetic),
// tf32 (TF32 tensor cores for convolutions and GEMMs, PyTorch's cuDNN default) or bf16 (mixed
// precision, as PyTorch's autocast to bfloat16). The CPU backend computes in fp32 whatever
// they say; the reason string of a CPU choice says so when they asked for more.
CudaOptions cuda_options(const std::string& precision, bool deterministic);

// DPTRAIN_CUDNN_BN=persistent|spatial (unset: persistent): CudaOptions::batchnorm_persistent.
bool cudnn_batchnorm_persistent_from_environment();

// Whether the CPU backend keeps blocked (nChw16c) activations for this network
// (cpu/activation_layout.h): DPTRAIN_CPU_LAYOUT=blocked|nhwc decides; unset or `auto`, basic-
// block ResNets get blocked and bottleneck ones (ResNet-50) NHWC, whichever ran faster here.
bool cpu_blocked_activations(const std::string& arch);

// `pin_threads`: bind the CPU backend's threads to cores (cpu::pin_openmp_threads).
// `cpu_blocked`: the CPU backend's activation layout (cpu_blocked_activations).
BackendChoice choose_backend(const std::string& device, int threads, int local_rank,
                             int local_size, const CudaOptions& cuda = {},
                             bool pin_threads = true, bool cpu_blocked = true);

// Collective: the ranks compare the devices they chose. Under --device auto a rank whose CUDA
// initialisation failed falls back to the CPU while its peers take the GPU, and their next
// collectives (NCCL's, or ones on device memory) would not match; so before any of them, a
// disagreement ends every rank with a communication error naming each rank's device and this
// rank's reason. Returns `choice` when all agree.
BackendChoice agree_on_backend(BackendChoice choice, Communicator& comm);
// The comparison itself: `mine` is this rank's device, `reason` what the error says of it.
void check_same_device(Device mine, const std::string& reason, Communicator& comm);

}  // namespace dp
