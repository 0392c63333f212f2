// Wall-clock timing of the phases of a training step (data / forward / backward / comm /
// optimizer), accumulated per epoch for metrics.h5, and the UTC time as text.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace dp {

// The current UTC time in strftime's `format` ("%Y-%m-%dT%H:%M:%SZ" for a record,
// "%Y%m%d-%H%M%S" for a file name).
inline std::string utc_time(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  return std::string(text, std::strftime(text, sizeof text, format, &tm));
}

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
