#include "comm/collective_watchdog.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"

namespace dp {

CollectiveWatchdog::CollectiveWatchdog(double timeout_seconds)
    : timeout_(timeout_seconds), last_beat_(now_seconds()) {
  if (timeout_ > 0) thread_ = std::thread([this] { watch(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CollectiveWatchdog::beat() { last_beat_.store(now_seconds(), std::memory_order_relaxed); }

void CollectiveWatchdog::watch() {
  const auto period = std::chrono::duration<double>(std::clamp(timeout_ / 10, 0.05, 1.0));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
    const double last = last_beat_.load(std::memory_order_relaxed);
    if (now_seconds() - last <= timeout_) continue;
    log::error(
        "option --collective-timeout: no progress for {:.0f} s (a rank stalled or a collective "
        "hangs); ending the job",
        now_seconds() - last);
    std::fflush(nullptr);
    // Not MPI_Abort: MPI was initialised for calls from the main thread only, and that thread
    // is the one stuck. Leaving without MPI_Finalize makes the launcher end the other ranks.
    std::_Exit(static_cast<int>(ExitCode::communication));
  }
}

}  // namespace dp
