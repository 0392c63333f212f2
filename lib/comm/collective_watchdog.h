// A rank that stalls (a hung GPU, a dead file system, a deadlocked thread) leaves every other
// rank waiting inside a collective that never completes, and MPI has no timeout of its own.
// The watchdog is a thread that expects a heartbeat from the training loop: when none has come
// for `timeout_seconds`, it prints one error line naming the option and ends this process with
// the communication exit code. mpirun (or srun) then ends the other ranks; each of them runs
// its own watchdog too, so the job ends even when the launcher does not.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace dp {

class CollectiveWatchdog {
 public:
  // timeout_seconds <= 0 disables the watchdog. Nothing is watched before the first beat().
  explicit CollectiveWatchdog(double timeout_seconds);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // The loop made progress; the deadline moves to now + timeout.
  void beat();

 private:
  void watch();

  const double timeout_;
  std::atomic<double> last_beat_{-1.0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dp
