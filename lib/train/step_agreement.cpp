#include "train/step_agreement.h"

namespace dp {

StepAgreement agree_on_step(Communicator& comm, double loss, int64_t correct, int64_t samples,
                            bool stop_requested, bool time_due_on_rank0) {
  double values[5] = {loss, double(correct), double(samples), stop_requested ? 1.0 : 0.0,
                      comm.rank() == 0 && time_due_on_rank0 ? 1.0 : 0.0};
  comm.allreduce_sum(values, 5);
  return {values[0] / comm.size(), values[1] / values[2], values[3] > 0, values[4] > 0};
}

bool agree_on_stop(Communicator& comm, bool stop_requested) {
  double value = stop_requested ? 1.0 : 0.0;
  comm.allreduce_sum(&value, 1);
  return value > 0;
}

}  // namespace dp
