// Where and how a command computes: the options `dptrain train`, `eval` and `bench` share
// (--device, --threads, --pin-threads, --precision, --deterministic), in one table with one
// validation, so the three commands take and refuse the same values.
#pragma once

#include <array>

#include "core/option_enum.h"

namespace boost::program_options {
class options_description;
}

namespace dp {

// --device: automatic is the CUDA backend where a GPU is usable, else the CPU one.
enum class DeviceRequest { automatic, cpu, cuda };
constexpr std::array<NamedValue<DeviceRequest>, 3> enum_names(DeviceRequest) {
  using D = DeviceRequest;
  return {{{D::automatic, "auto"}, {D::cpu, "cpu"}, {D::cuda, "cuda"}}};
}

// --precision: tf32 is the CUDA backend's alone.
enum class Precision { fp32, tf32, bf16 };
constexpr std::array<NamedValue<Precision>, 3> enum_names(Precision) {
  return {{{Precision::fp32, "fp32"}, {Precision::tf32, "tf32"}, {Precision::bf16, "bf16"}}};
}

struct DeviceOptions {
  DeviceRequest device = DeviceRequest::automatic;
  int threads = 0;          // compute threads per rank; 0: this rank's share
  bool pin_threads = true;  // CPU: bind each compute thread to its own core
  Precision precision = Precision::fp32;
  bool deterministic = false;  // CUDA: deterministic cuDNN algorithms only
};

void add_device_options(boost::program_options::options_description& desc, DeviceOptions& o);

// A UsageError ("option --NAME: ...") for a thread count or a combination no backend takes
// (the enums' values are refused where they are parsed), checked before any file is read;
// what depends on the machine (a GPU, bf16 arithmetic) is choose_backend's to refuse.
void validate_device_options(const DeviceOptions& o);

}  // namespace dp
