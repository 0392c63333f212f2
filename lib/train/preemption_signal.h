// SIGUSR1 and SIGTERM as a request to stop cleanly: Slurm sends USR1 ahead of the time limit
// (`#SBATCH --signal=USR1@120`) and TERM before it kills a cancelled or preempted job; mpirun
// forwards both to the ranks. The handler only stores the signal number in a lock-free atomic
// (async-signal-safe); the training loop polls it once per step, and the ranks agree on stopping
// through that step's allreduce, so every rank checkpoints and stops at the same step.
#pragma once

namespace dp {

class PreemptionSignal {
 public:
  // Installs the handlers; the destructor restores the previous ones. One instance at a time.
  PreemptionSignal();
  ~PreemptionSignal();
  PreemptionSignal(const PreemptionSignal&) = delete;
  PreemptionSignal& operator=(const PreemptionSignal&) = delete;

  // The signal received (SIGUSR1 or SIGTERM), 0 when none.
  int received() const;
  // "SIGUSR1" / "SIGTERM".
  static const char* name(int signal_number);
};

}  // namespace dp
