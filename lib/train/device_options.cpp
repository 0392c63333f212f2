#include "train/device_options.h"

#include <boost/program_options.hpp>

#include "core/error.h"
#include "train/command_line.h"

namespace po = boost::program_options;

namespace dp {

void add_device_options(po::options_description& desc, DeviceOptions& o) {
  desc.add_options()
      ("device", enum_option(o.device, "device"), "auto|cpu|cuda")
      ("threads", po::value(&o.threads)->default_value(o.threads),
       "compute threads per rank (0: the node's cores divided by the ranks on it, or the "
       "launcher's binding where that is fewer)")
      ("pin-threads", bool_option(o.pin_threads),
       "CPU: bind each compute thread to its own core (this rank's share of the node)")
      ("precision", enum_option(o.precision, "precision"),
       "fp32 (strict), tf32 (CUDA tensor cores) or bf16 (CUDA: mixed precision, bf16 "
       "activations, f32 weights, statistics and optimizer; CPU with AVX512-BF16 or AMX: "
       "convolutions on bf16 operands with f32 results, and the airbench networks' "
       "activations in bf16)")
      ("deterministic",
       bool_option(o.deterministic, /*flag=*/true),
       "CUDA: deterministic cuDNN algorithms only (bitwise repeatable runs)");
}

void validate_device_options(const DeviceOptions& o) {
  // OpenMP dies of a signal where it cannot start the team (100000 threads), and more than
  // 1024 threads a rank is beyond this machine's use; as `pack --threads`.
  constexpr int kMaxThreads = 1024;
  if (o.threads < 0 || o.threads > kMaxThreads)
    throw UsageError(fmt::format(
        "option --threads: {} (0 for this rank's share of the node's cores, or 1 to {})", o.threads,
        kMaxThreads));
  if (o.precision == Precision::tf32 && o.device == DeviceRequest::cpu)
    throw UsageError(
        "option --precision: tf32 needs the CUDA backend (--device cuda or auto); the CPU "
        "backend has fp32 and bf16");
}

}  // namespace dp
