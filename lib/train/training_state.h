// Where a run stands, as much as an exact resume needs beyond the model's tensors: the
// position in the run (finished epochs, steps into the current epoch, optimizer updates done)
// and this rank's running sums of the current epoch. Nothing else is needed: every random
// draw (initial weights, the sampler's permutation, augmentation) is a pure function of
// (seed, epoch, sample index) — see lib/nn/init.h, lib/data/distributed_sampler.h and
// lib/data/augment.h — so there is no generator state to save.
#pragma once

#include <array>
#include <cstdint>

#include "core/timer.h"

namespace dp {

struct ResumePoint {
  int64_t epochs_done = 0;    // finished epochs
  int64_t step_in_epoch = 0;  // steps done in epoch epochs_done + 1 (0 at an epoch boundary)
  int64_t global_step = 0;    // optimizer updates done: the LR schedule's position
  // The checkpoint's own count of updates (/steps rows up to it, or up to global_step where
  // that is less, are kept on resume); differs from global_step only when the steps per epoch
  // changed with the world size.
  int64_t checkpoint_step = 0;
  // Updates skipped in a row (NaN steps) up to this point: --max-consecutive-skips counts on
  // from it after a resume.
  int64_t consecutive_skips = 0;
  bool at_epoch_boundary() const { return step_in_epoch == 0; }
};

// Sums of one epoch's training statistics on this rank.
struct EpochTotals {
  double loss_sum = 0;  // sum over samples
  int64_t correct = 0, samples = 0, steps = 0;
  PhaseTimes times;
  double comm_hidden = 0;  // part of times.comm overlapped with backward
  double elapsed = 0;      // wall time of the epoch spent before a resume
  // Steps whose update the ranks agreed to skip (the same count on every rank): kept in the
  // checkpoint's "epoch_skipped_steps" attribute, not in the per-rank array below.
  int64_t skipped = 0;

  // As doubles (exact: the counts stay far below 2^53), for the checkpoint.
  static constexpr int kFields = 11;
  std::array<double, kFields> to_array() const {
    return {loss_sum,         double(correct), double(samples), double(steps), times.data,
            times.forward,    times.backward,  times.comm,      times.optimizer, comm_hidden,
            elapsed};
  }
  static EpochTotals from_array(const double* a) {
    EpochTotals t;
    t.loss_sum = a[0];
    t.correct = static_cast<int64_t>(a[1]);
    t.samples = static_cast<int64_t>(a[2]);
    t.steps = static_cast<int64_t>(a[3]);
    t.times.data = a[4];
    t.times.forward = a[5];
    t.times.backward = a[6];
    t.times.comm = a[7];
    t.times.optimizer = a[8];
    t.comm_hidden = a[9];
    t.elapsed = a[10];
    return t;
  }
};

}  // namespace dp
