#include "comm/gradient_reducer.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "core/timer.h"

namespace dp {

namespace {
constexpr size_t kNone = std::numeric_limits<size_t>::max();
}

GradientReducer::GradientReducer(float* grads, std::vector<GradientSlice> slices,
                                 Communicator& comm, int64_t bucket_bytes)
    : grads_(grads), slices_(std::move(slices)), comm_(comm) {
  DP_CHECK(grads_ != nullptr, "gradient reducer needs a gradient buffer");
  DP_CHECK(!slices_.empty(), "gradient reducer needs at least one parameter");
  DP_CHECK(bucket_bytes > 0, "bucket size must be positive, got {}", bucket_bytes);
  size_t max_id = 0;
  for (const auto& s : slices_) {
    DP_CHECK(s.count > 0 && s.offset >= 0, "bad gradient slice (offset {}, count {})", s.offset,
             s.count);
    max_id = std::max(max_id, s.id);
  }
  bucket_of_id_.assign(max_id + 1, kNone);
  slice_of_id_.assign(max_id + 1, kNone);

  // Reverse registration order: the last layer's parameters fill the first bucket.
  const int64_t cap = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  int64_t filled = 0;
  for (size_t i = slices_.size(); i-- > 0;) {
    const GradientSlice& s = slices_[i];
    DP_CHECK(slice_of_id_[s.id] == kNone, "parameter id {} listed twice", s.id);
    if (buckets_.empty() || (filled > 0 && filled + s.count > cap)) {
      buckets_.emplace_back();
      filled = 0;
    }
    buckets_.back().slices.push_back(i);
    filled += s.count;
    bucket_of_id_[s.id] = buckets_.size() - 1;
    slice_of_id_[s.id] = i;
  }
  reset();
}

int64_t GradientReducer::bucket_elements(size_t b) const {
  int64_t n = 0;
  for (size_t i : buckets_.at(b).slices) n += slices_[i].count;
  return n;
}

void GradientReducer::reset() {
  ready_.assign(slices_.size(), 0);
  for (auto& b : buckets_) {
    b.pending = static_cast<int>(b.slices.size());
    b.reductions.clear();
    b.launched_at = b.done_at = 0;
  }
  next_launch_ = next_unfinished_ = 0;
}

void GradientReducer::mark_ready(size_t id) {
  DP_CHECK(id < slice_of_id_.size() && slice_of_id_[id] != kNone,
           "gradient ready for unknown parameter id {}", id);
  const size_t slice = slice_of_id_[id];
  DP_CHECK(!ready_[slice], "gradient of parameter id {} produced twice in one step", id);
  ready_[slice] = 1;
  Bucket& bucket = buckets_[bucket_of_id_[id]];
  --bucket.pending;
  if (bucket.pending == 0) launch_ready_buckets();
  // Every hook call is a chance for MPI to move the buckets already in flight.
  poll();
}

void GradientReducer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0)
    launch(buckets_[next_launch_++]);
}

void GradientReducer::launch(Bucket& bucket) {
  bucket.launched_at = now_seconds();
  // The slices run from high offsets to low; merge neighbours into contiguous runs so a
  // bucket of a contiguous flat buffer is one allreduce.
  int64_t run_begin = -1, run_end = -1;
  auto flush = [&] {
    if (run_begin >= 0)
      bucket.reductions.push_back(
          comm_.start_allreduce_mean(grads_ + run_begin, run_end - run_begin));
  };
  for (size_t i : bucket.slices) {
    const GradientSlice& s = slices_[i];
    if (run_begin >= 0 && s.offset + s.count == run_begin) {
      run_begin = s.offset;
    } else {
      flush();
      run_begin = s.offset;
      run_end = s.offset + s.count;
    }
  }
  flush();
}

void GradientReducer::poll() {
  // Complete in launch order; testing the oldest unfinished bucket also progresses the rest.
  while (next_unfinished_ < next_launch_) {
    Bucket& bucket = buckets_[next_unfinished_];
    for (auto& r : bucket.reductions)
      if (!r->test()) return;
    bucket.done_at = now_seconds();
    ++next_unfinished_;
  }
}

ReductionTimes GradientReducer::finish() {
  const double backward_end = now_seconds();
  for (; next_launch_ < buckets_.size(); ++next_launch_) launch(buckets_[next_launch_]);
  for (; next_unfinished_ < buckets_.size(); ++next_unfinished_) {
    for (auto& r : buckets_[next_unfinished_].reductions) r->wait();
  }
  const double end = now_seconds();

  // Hidden time: the union of the in-flight intervals of buckets started during backward,
  // each cut at the end of backward. Launch times only grow, so one sweep merges them.
  double hidden = 0, covered_to = 0;
  for (const Bucket& b : buckets_) {
    if (b.launched_at >= backward_end) break;
    const double stop = std::min(b.done_at > 0 ? b.done_at : backward_end, backward_end);
    const double start = std::max(b.launched_at, covered_to);
    if (stop > start) hidden += stop - start;
    covered_to = std::max(covered_to, stop);
  }
  reset();
  return ReductionTimes{hidden + (end - backward_end), hidden};
}

}  // namespace dp
