// Lookahead as in airbench94 (--lookahead-every k): an exponential average of the model's
// float state, parameters AND BatchNorm running statistics (not num_batches_tracked, an
// integer in torch), taken at the start of training. After every k-th step t (1-based),
//   d = base^k * (t / T)^power,  ema = lerp(ema, w, 1 - d)  (torch's lerp_),  w = ema,
// and after the last step T once more with d = 1, so training ends on the average.
// As in airbench95, the average may start later (--lookahead-start-epoch E > 0): it is taken
// from the weights after the first k-th step of epochs E + 1 on (no update there), and nothing
// moves before; with --lookahead-each-epoch the weights also become the average (d = 1) at the
// end of every epoch from then on.
// The arithmetic runs on host copies of the flat buffers (2M floats every k steps for the
// recipe's network). The parameters' average is identical on every rank, as the parameters
// are; the BN statistics' is each rank's own, as the statistics are (the same on every rank
// but with --broadcast-buffers false). A training checkpoint holds the average
// (train/training_checkpoint.h).
#pragma once

#include <cstdint>
#include <vector>

#include "nn/model.h"
#include "train/lookahead_settings.h"
#include "train/step_callback.h"

namespace dp {

// The average, flat in ParameterStore order on the host. The elements outside the average
// (num_batches_tracked) keep their value from the start and are never read.
struct LookaheadAverage {
  std::vector<float> params, buffers;
};

// Whether the average covers `entry`: every parameter and every BN buffer but the step counter.
inline bool lookahead_averages(const nn::StateEntry& entry) {
  return entry.kind == nn::StateKind::parameter ||
         entry.buffer_role != nn::BufferRole::num_batches_tracked;
}

// The options' settings and the run's length they apply over.
struct LookaheadOptions : LookaheadSettings {
  int64_t total_steps = 1;  // T
  int64_t steps_per_epoch = 1;
};

class LookaheadCallback final : public StepCallback {
 public:
  // Snapshots the model's state as the average's start (with a late start, a placeholder until
  // then, which a checkpoint stores as it is).
  LookaheadCallback(nn::Model& model, const LookaheadOptions& options);
  void after_step(const StepPosition& at, optim::Optimizer&, bool updated) override;
  // The decay after step t (1-based), or a negative value where no update is due.
  double decay_after(int64_t t) const;
  // ema = lerp(ema, w, 1 - decay) over every averaged element, then w = ema.
  void update(double decay);
  // ema = w: the average's start.
  void snapshot();
  // The average, for the checkpoint to save and a resume to restore.
  LookaheadAverage& average() { return average_; }

 private:
  nn::Model& model_;
  LookaheadOptions options_;
  int64_t start_step_ = 0;  // after it the average starts from the weights (0: at construction)
  LookaheadAverage average_;
  std::vector<float> host_;
  std::vector<uint8_t> buffer_averaged_;  // per buffer element: 1 unless num_batches_tracked
};

}  // namespace dp
