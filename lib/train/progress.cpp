#include "train/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace dp {

std::string format_duration(double seconds) {
  int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s >= 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02d}", s / 60, s % 60);
}

Progress::Progress(int64_t epochs, int64_t steps_per_epoch, int64_t steps_to_run,
                   int64_t global_batch, Clock clock)
    : epochs_(epochs),
      steps_per_epoch_(steps_per_epoch),
      steps_to_run_(steps_to_run),
      global_batch_(global_batch),
      clock_(clock),
      start_(clock_()),
      last_time_(start_) {}

std::string Progress::line(int64_t epoch, int64_t step, double loss, double accuracy, double lr) {
  const double now = clock_();
  const int64_t global_step = (epoch - 1) * steps_per_epoch_ + step;
  const double rate = (global_step - last_global_step_) * global_batch_ / (now - last_time_);
  last_time_ = now;
  last_global_step_ = global_step;
  const double per_step = (now - start_) / std::max<int64_t>(global_step - first_global_step_, 1);
  const double eta = per_step * double(steps_to_run_ - global_step);
  return fmt::format("epoch {}/{} step {}/{} loss {:.4f} acc {:.2f}% lr {:.5f} {:.1f} img/s eta {}",
                     epoch, epochs_, step, steps_per_epoch_, loss, 100 * accuracy, lr, rate,
                     format_duration(eta));
}

void Progress::resume_at(int64_t global_step) {
  first_global_step_ = last_global_step_ = global_step;
  start_ = last_time_ = clock_();
}

std::string Progress::epoch_summary(const EpochRecord& r, bool evaluated) const {
  std::string val = !evaluated              ? std::string("val -")
                    : std::isnan(r.val_acc) ? std::string("val loss not finite")
                                            : fmt::format("val loss {:.4f} val acc {:.2f}%",
                                                          r.val_loss, 100 * r.val_acc);
  // The training means count updated steps only: none when every step was skipped.
  std::string train = std::isnan(r.train_acc) ? std::string("train - (every update skipped)")
                                              : fmt::format("train loss {:.4f} acc {:.2f}%",
                                                            r.train_loss, 100 * r.train_acc);
  return fmt::format(
      "epoch {}/{} done in {}: {}, {}, {:.1f} img/s "
      "(data {:.1f}s fwd {:.1f}s bwd {:.1f}s comm {:.1f}s opt {:.1f}s eval {:.1f}s)",
      r.epoch, epochs_, format_duration(r.epoch_time), train, val, r.images_per_sec, r.time_data,
      r.time_forward, r.time_backward, r.time_comm, r.time_optimizer, r.time_eval);
}

}  // namespace dp
