// How the CPU backend is set up for a rank and a network: its threads (and their cores), the
// activation layout and what bf16 makes of it. choose_backend (backend_choice.h) applies them;
// `dptrain bench --peak` takes the rank's threads alone.
#pragma once

#include <string>

#include "backend/backend.h"

namespace dp {

// A rank's CPU threads: `threads`, or its share of the node where that is 0
// (cpu::default_team), bound to cores where `pin` (cpu::pin_openmp_threads); `description`
// says so for the log ("2 threads, pinned to cores 0-1").
struct CpuTeam {
  int threads;
  std::string description;
};
CpuTeam take_cpu_team(int threads, bool pin, int local_rank, int local_size);

// Whether the CPU backend keeps blocked (nChw16c) activations for this network
// (cpu/activation_layout.h): DPTRAIN_CPU_LAYOUT=blocked|nhwc decides; unset or `auto`, basic-
// block ResNets get blocked and bottleneck ones (ResNet-50) NHWC, whichever ran faster
// (tests/bench/results/code-measurements-backend.md).
// With bf16 convolutions (`bf16_convolutions`: the backend really runs them), auto is the
// layout those kernels read and write on this CPU (`bf16_layout`, cpu_bf16_convolution_layout():
// NHWC with AMX, nChw16c without) for every network: the other would add a reorder to every
// convolution.
bool cpu_blocked_activations(const std::string& arch, bool bf16_convolutions = false,
                             Layout bf16_layout = cpu_bf16_convolution_layout());

// What bf16 (`bf16`: --precision bf16 on a CPU that has it) makes of the CPU backend for
// `arch`: bf16 activations for the networks whose every activation op has a bf16 kernel there
// (airbench94: convolution, bias, GELU, max pooling, batch norm, linear), else bf16
// convolutions between f32 activations (ResNets: their ReLU, residual adds and average pooling
// are f32 loops).
CpuBf16 cpu_bf16_mode(const std::string& arch, bool bf16);

}  // namespace dp
