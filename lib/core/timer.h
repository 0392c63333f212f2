// Wall-clock timing of the phases of a training step (data / forward / backward / comm /
// optimizer), accumulated per epoch for metrics.h5.
#pragma once

#include <chrono>

namespace dp {

inline double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

struct PhaseTimes {
  double data = 0, forward = 0, backward = 0, comm = 0, optimizer = 0;
  void reset() { *this = PhaseTimes{}; }
};

// Adds the time from construction to destruction to `target`.
class ScopedTimer {
 public:
  explicit ScopedTimer(double& target) : target_(target), start_(now_seconds()) {}
  ~ScopedTimer() { target_ += now_seconds() - start_; }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  double& target_;
  double start_;
};

}  // namespace dp
