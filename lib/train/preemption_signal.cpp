#include "train/preemption_signal.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>

#include "core/error.h"

namespace dp {

namespace {

std::atomic<int> g_received{0};
static_assert(std::atomic<int>::is_always_lock_free, "signal handlers need a lock-free flag");
std::atomic<bool> g_installed{false};

extern "C" void on_preemption_signal(int signal_number) {
  g_received.store(signal_number, std::memory_order_relaxed);
}

void install(int signal_number) {
  struct sigaction action {};
  action.sa_handler = on_preemption_signal;
  sigemptyset(&action.sa_mask);
  // Restart interrupted system calls: the HDF5 reads and MPI calls in flight must not fail
  // because a signal arrived.
  action.sa_flags = SA_RESTART;
  DP_CHECK(sigaction(signal_number, &action, nullptr) == 0, "sigaction({}) failed", signal_number);
}

}  // namespace

PreemptionSignal::PreemptionSignal() {
  DP_CHECK(!g_installed.exchange(true), "only one PreemptionSignal per process");
  g_received.store(0);
  install(SIGUSR1);
  install(SIGTERM);
}

void PreemptionSignal::reinstall() const {
  install(SIGUSR1);
  install(SIGTERM);
}

int PreemptionSignal::received() const { return g_received.load(std::memory_order_relaxed); }

bool PreemptionSignal::wait_for(double seconds) const {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (received() == 0 && Clock::now() < deadline) {
    // A handler cannot wake a condition variable safely; polling every 10 ms is plenty for a
    // test option.
    const timespec ten_ms{0, 10'000'000};
    nanosleep(&ten_ms, nullptr);
  }
  return received() != 0;
}

const char* PreemptionSignal::name(int signal_number) {
  switch (signal_number) {
    case SIGUSR1: return "SIGUSR1";
    case SIGTERM: return "SIGTERM";
    default: return "signal";
  }
}

}  // namespace dp
