// SIGUSR1 and SIGTERM as a request to stop cleanly: Slurm sends USR1 ahead of the time limit
// (`#SBATCH --signal=USR1@120`) and TERM before it kills a cancelled or preempted job; mpirun
// forwards both to the ranks. The handler only stores the signal number in a lock-free atomic
// (async-signal-safe); the training loop polls it after every step and every evaluation batch,
// and the ranks agree on stopping through that step's or batch's allreduce, so every rank
// checkpoints and stops at the same point. The handlers stay installed until the process
// exits, on purpose: a signal that arrives after the run's last evaluation (during the final
// writes, MPI_Finalize or the exit itself) must not turn a finished run into a death by
// signal; with nobody polling, it is simply ignored.
#pragma once

namespace dp {

class PreemptionSignal {
 public:
  // Installs the handlers for the rest of the process. One instance per process.
  PreemptionSignal();
  PreemptionSignal(const PreemptionSignal&) = delete;
  PreemptionSignal& operator=(const PreemptionSignal&) = delete;

  // Installs the handlers again (after MPI_Init, which may have put its own in their place);
  // a signal already received stays received.
  void reinstall() const;
  // The signal received (SIGUSR1 or SIGTERM), 0 when none.
  int received() const;
  // Waits until a signal has been received or `seconds` have passed; true when one was.
  bool wait_for(double seconds) const;
  // "SIGUSR1" / "SIGTERM".
  static const char* name(int signal_number);
};

}  // namespace dp
