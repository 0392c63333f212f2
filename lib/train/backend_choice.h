// Picks the compute backend for --device auto|cpu|cuda and says why, so a batch log shows
// plainly whether a run used the GPU.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"

namespace dp {

struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string reason;
};

// `threads` = 0: this rank's share of the machine's cores (cores / ranks on the node).
BackendChoice choose_backend(const std::string& device, int threads, int local_size);

}  // namespace dp
