// Test-only behaviour of a training step, in one place and out of the step's own code: the
// step calls after_forward() on every step, and only the hooks built from test options do
// anything there. The options (lib/train/config.h, "Testing"):
// - --fail-at-step/--fail-rank/--fail-mode: one rank throws, kills itself or stalls
//   (comm/fault_injection.h), for the "every rank fails together" guarantee;
// - --pause-at-step: every rank waits for SIGUSR1/SIGTERM, so a test can signal a job at a
//   known step; --pause-in-eval: rank 0 waits for one after its first evaluation batch, so that
//   a test can signal a job during an evaluation;
// - --inject-nan-at-step/-rank/-steps: one rank's loss gradient is poisoned with NaN, so its
//   gradients, and after averaging everyone's, turn NaN (train/step_guard.h skips the update);
// - --dump-samples PATH: each rank appends its batches' dataset indices to PATH.<rank>, so a
//   test can see which samples every step took (e.g. across a resume on another world size).
#pragma once

#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "core/tensor.h"
#include "train/config.h"
#include "train/step_callback.h"

namespace dp::data {
struct HostBatch;
}

namespace dp {

class PreemptionSignal;

class TestHooks {
 public:
  virtual ~TestHooks() = default;
  // Before step `at` uploads `batch`.
  virtual void before_step(const StepPosition& at, const data::HostBatch& batch) = 0;
  // After the forward pass and loss of global step `step` (1-based), before backward.
  virtual void after_forward(int64_t step, Tensor& dlogits) = 0;
  // After each batch of training's evaluations.
  virtual void after_eval_batch() = 0;
  // Whether after_forward may rewrite dlogits: a replayed CUDA graph runs backward without
  // passing here, so graphs must stay off then.
  virtual bool rewrites_dlogits() const = 0;
};

// Hooks that do nothing unless `config` asks for fault, pause or NaN injection or a sample dump
// (rank `rank` of `world`). Throws UsageError where a fault or NaN is aimed at a rank past the
// job's.
std::unique_ptr<TestHooks> make_test_hooks(const TrainConfig& config, Backend& backend, int rank,
                                           int world, const PreemptionSignal& signal);

}  // namespace dp
