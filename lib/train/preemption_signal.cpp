#include "train/preemption_signal.h"

#include <atomic>
#include <csignal>

#include "core/error.h"

namespace dp {

namespace {

std::atomic<int> g_received{0};
static_assert(std::atomic<int>::is_always_lock_free, "signal handlers need a lock-free flag");
std::atomic<bool> g_installed{false};
struct sigaction g_previous_usr1, g_previous_term;

extern "C" void on_preemption_signal(int signal_number) {
  g_received.store(signal_number, std::memory_order_relaxed);
}

void install(int signal_number, struct sigaction* previous) {
  struct sigaction action {};
  action.sa_handler = on_preemption_signal;
  sigemptyset(&action.sa_mask);
  // Restart interrupted system calls: the HDF5 reads and MPI calls in flight must not fail
  // because a signal arrived.
  action.sa_flags = SA_RESTART;
  DP_CHECK(sigaction(signal_number, &action, previous) == 0, "sigaction({}) failed", signal_number);
}

}  // namespace

PreemptionSignal::PreemptionSignal() {
  DP_CHECK(!g_installed.exchange(true), "only one PreemptionSignal may exist at a time");
  g_received.store(0);
  install(SIGUSR1, &g_previous_usr1);
  install(SIGTERM, &g_previous_term);
}

PreemptionSignal::~PreemptionSignal() {
  sigaction(SIGUSR1, &g_previous_usr1, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
  g_installed.store(false);
}

int PreemptionSignal::received() const { return g_received.load(std::memory_order_relaxed); }

const char* PreemptionSignal::name(int signal_number) {
  switch (signal_number) {
    case SIGUSR1: return "SIGUSR1";
    case SIGTERM: return "SIGTERM";
    default: return "signal";
  }
}

}  // namespace dp
