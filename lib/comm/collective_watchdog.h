// A rank that stalls (a hung GPU, a dead file system, a deadlocked thread) leaves every other
// rank waiting inside a collective that never completes, and MPI has no timeout of its own.
// The watchdog is a thread that expects a heartbeat from the training job (a training step,
// an evaluation batch): when none has come for `timeout_seconds`, counted from its
// construction, it prints one error line naming the option and ends this process with the
// communication exit code. mpirun (or srun) then ends the other ranks; each of them runs
// its own watchdog too, so the job ends even when the launcher does not.
#pragma once

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace dp {

// Why `seconds` is no --collective-timeout (finite, not negative; 0: off), or "" when it is
// one: the one check of `train`'s and `eval`'s option.
inline const char* collective_timeout_problem(double seconds) {
  return std::isfinite(seconds) && seconds >= 0 ? "" : "must be finite and not negative";
}

class CollectiveWatchdog {
 public:
  // timeout_seconds <= 0 disables the watchdog. Construction counts as the first beat: the
  // start-up's collectives (the ranks' agreements, the broadcast of the weights, a resume's
  // checks) and the first step are watched too.
  explicit CollectiveWatchdog(double timeout_seconds);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // The loop made progress; the deadline moves to now + timeout.
  void beat();

 private:
  void watch();

  const double timeout_;
  std::atomic<double> last_beat_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dp
