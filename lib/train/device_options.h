// Where and how a command computes: the options `dptrain train`, `eval` and `bench` share
// (--device, --threads, --pin-threads, --precision, --deterministic), in one table with one
// validation, so the three commands take and refuse the same values.
#pragma once

#include <string>

namespace boost::program_options {
class options_description;
}

namespace dp {

struct DeviceOptions {
  std::string device = "auto";     // auto | cpu | cuda
  int threads = 0;                 // compute threads per rank; 0: this rank's share of the node
  bool pin_threads = true;         // CPU: bind each compute thread to its own core
  std::string precision = "fp32";  // fp32 | tf32 (CUDA) | bf16
  bool deterministic = false;      // CUDA: deterministic cuDNN algorithms only
};

void add_device_options(boost::program_options::options_description& desc, DeviceOptions& o);

// A UsageError ("option --NAME: ...") for a value no backend takes, checked before any file
// is read; what depends on the machine (a GPU, bf16 arithmetic) is choose_backend's to refuse.
void validate_device_options(const DeviceOptions& o);

}  // namespace dp
