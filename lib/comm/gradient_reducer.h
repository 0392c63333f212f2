// GradientReducer: averages the flat gradient buffer over ranks the way PyTorch DDP does.
// Parameters are grouped into buckets of about `bucket_bytes`, in REVERSE registration order
// (backward produces the last layer's gradients first). mark_ready(id), called by the model's
// grad-ready hook, counts a parameter as done; when a bucket is complete its allreduce starts
// at once, overlapping the rest of backward. finish() starts what is left, waits for all and
// leaves the average (sum / world size) in the buffer.
//
// Buckets start strictly in bucket order on every rank (a later bucket that completes early
// waits for the earlier ones), so the collectives match across ranks whatever the order of
// the hook calls. The reducer knows parameters only as (id, offset, count) slices of the
// buffer, not as model layers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "comm/communicator.h"

namespace dp {

struct GradientSlice {
  size_t id;       // the key mark_ready() is called with (a ParameterStore id)
  int64_t offset;  // elements into the flat gradient buffer
  int64_t count;   // elements
};

// Timing of one step's reduction. `comm` is the whole time allreduces were in flight or
// waited for; `hidden` is the part of it that overlapped backward (before finish() began);
// comm - hidden is the time the step was blocked on communication inside finish().
struct ReductionTimes {
  double comm = 0, hidden = 0;
};

class GradientReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25LL * 1024 * 1024;

  // `slices` in registration order, contiguous or not, each at least one element; a bucket
  // holds whole parameters, so a parameter larger than `bucket_bytes` gets a bucket alone.
  GradientReducer(float* grads, std::vector<GradientSlice> slices, Communicator& comm,
                  int64_t bucket_bytes = kDefaultBucketBytes);

  // The gradient of parameter `id` is final for this step.
  void mark_ready(size_t id);
  // Starts the remaining buckets, waits for all, and readies the reducer for the next step.
  ReductionTimes finish();

  size_t bucket_count() const { return buckets_.size(); }
  // Elements of bucket b (for tests and logs).
  int64_t bucket_elements(size_t b) const;

 private:
  struct Bucket {
    std::vector<size_t> slices;  // indices into slices_
    int pending = 0;             // parameters not yet ready this step
    std::vector<std::unique_ptr<PendingReduction>> reductions;  // one per contiguous run
    double launched_at = 0, done_at = 0;  // done_at: when a test() first saw it complete
  };
  void launch_ready_buckets();
  void launch(Bucket& bucket);
  void poll();
  void reset();

  float* grads_;
  std::vector<GradientSlice> slices_;
  Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_id_;  // indexed by id; npos for unknown ids
  std::vector<size_t> slice_of_id_;
  std::vector<char> ready_;     // per slice, this step
  size_t next_launch_ = 0;      // buckets before it have been started
  size_t next_unfinished_ = 0;  // buckets before it are known complete
};

}  // namespace dp
