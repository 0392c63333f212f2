#include "train/checkpoint_policy.h"

namespace dp {

CheckpointPolicy::CheckpointPolicy(const CheckpointPolicyOptions& options, double now_seconds)
    : options_(options), last_saved_(now_seconds) {}

bool CheckpointPolicy::steps_due(int64_t global_step) const {
  return options_.every_steps > 0 && global_step % options_.every_steps == 0;
}

bool CheckpointPolicy::time_due(double now_seconds) const {
  return options_.every_minutes > 0 && now_seconds - last_saved_ >= options_.every_minutes * 60;
}

bool CheckpointPolicy::epoch_due(int64_t epoch, bool last) const {
  return last || (options_.every_epochs > 0 && epoch % options_.every_epochs == 0);
}

}  // namespace dp
