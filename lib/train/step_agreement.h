// What the ranks agree on after every step, in one small allreduce: the global batch's loss
// and accuracy (for the log and /steps), whether any rank got a stop signal, and whether rank
// 0's clock says a timed checkpoint is due. Signals that arrive outside a step (during
// evaluation, say) are agreed on at the epoch's end.
#pragma once

#include <cstdint>

#include "comm/communicator.h"

namespace dp {

struct StepAgreement {
  double loss = 0, accuracy = 0;
  bool stop = false, checkpoint_due = false;
};

StepAgreement agree_on_step(Communicator& comm, double loss, int64_t correct, int64_t samples,
                            bool stop_requested, bool time_due_on_rank0);
bool agree_on_stop(Communicator& comm, bool stop_requested);

}  // namespace dp
