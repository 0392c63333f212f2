// Progress lines for a batch log (one line per report, no carriage returns): epoch, step,
// loss, accuracy, learning rate, throughput and the time left for the whole run.
#pragma once

#include <cstdint>
#include <string>

#include "core/timer.h"
#include "io/metrics_writer.h"

namespace dp {

class Progress {
 public:
  // `steps_to_run`: the run's last global step (fewer than epochs x steps_per_epoch with a
  // fractional --epochs or --stop-after-steps), where the time left reaches 0.
  // `clock`: seconds from any fixed start (a test passes its own).
  using Clock = double (*)();
  Progress(int64_t epochs, int64_t steps_per_epoch, int64_t steps_to_run, int64_t global_batch,
           Clock clock = now_seconds);
  // Called after step `step` (1-based) of epoch `epoch` (1-based). Its img/s counts the steps
  // since the previous line over the time since then, less the paused time.
  std::string line(int64_t epoch, int64_t step, double loss, double accuracy, double lr);
  // `seconds` spent since the last line on work that is not training (an evaluation, a
  // checkpoint): left out of the next line's img/s, kept in the time left.
  void paused(double seconds) { last_time_ += seconds; }
  // `evaluated`: the epoch ran an evaluation (its val fields are NaN when it did not, and when
  // the evaluation's loss was not finite).
  std::string epoch_summary(const EpochRecord& record, bool evaluated) const;
  // A resumed run starts at `global_step`: throughput and time left count from there.
  void resume_at(int64_t global_step);

 private:
  int64_t epochs_, steps_per_epoch_, steps_to_run_, global_batch_;
  Clock clock_;
  double start_;
  double last_time_;
  int64_t last_global_step_ = 0;
  int64_t first_global_step_ = 0;
};

std::string format_duration(double seconds);  // "1:02:03" / "2:03"

}  // namespace dp
