// How the CUDA backend queues work that reports failure only through cudaGetLastError (its own
// kernels, and the cuDNN calls around them): checked_launch runs the launch, then throws as
// DP_CUDA_CHECK(cudaGetLastError()) would on the caller's line, so the error names the op.
// The overload taking a tensor also picks the element type of an activation kernel: float, or
// bf16 under mixed precision.
#pragma once

#include <source_location>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "core/tensor.h"

namespace dp::cuda {

// The element type an activation launch runs in, passed as a tag: a launch written as
// `[&]<typename T>(ElementTag<T>) { ... x.data<T>() ... }` serves f32 and bf16 with one body.
template <typename T>
struct ElementTag {};

// Calls launch(ElementTag<float>) or launch(ElementTag<kernels::bf16>) as `t` holds f32 or
// bf16; any other element type throws naming `op`. Checks nothing after the launch: the caller
// does (checked_launch), once everything the op queues is queued.
template <typename Launch>
void with_activation_type(const Tensor& t, const char* op, Launch&& launch) {
  if (t.dtype() == DType::f32)
    launch(ElementTag<float>{});
  else if (t.dtype() == DType::bf16)
    launch(ElementTag<kernels::bf16>{});
  else
    throw Error(ExitCode::internal, fmt::format("{}: activations must be f32 or bf16", op));
}

// Runs `launch`, which queues work on the compute stream, and throws if queueing failed.
template <typename Launch>
void checked_launch(Launch&& launch, std::source_location where = std::source_location::current()) {
  launch();
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw_cuda_error(status, where.file_name(), static_cast<int>(where.line()),
                     "cudaGetLastError()");
}

// The same for an activation kernel, launched in the element type of `t` (with_activation_type).
template <typename Launch>
void checked_launch(const Tensor& t, const char* op, Launch&& launch,
                    std::source_location where = std::source_location::current()) {
  checked_launch([&] { with_activation_type(t, op, launch); }, where);
}

}  // namespace dp::cuda
