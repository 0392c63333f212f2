// The LR schedule's command-line options: which LrScheduleSpec field each sets, which schedule
// alone reads it, the spec a run's options make, and the schedule's refusals reworded to name
// the options. The schedules themselves, their names and their checks live in
// optim/lr_schedule.h; this file only maps options onto them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "optim/lr_schedule.h"
#include "train/config.h"

namespace dp {

struct ScheduleOption {
  const char* option;     // without "--"
  const char* parameter;  // the LrScheduleSpec field it sets
  // the one schedule that reads it, and beside every other one it is refused; none when
  // several read it (it is then refused beside none)
  std::optional<optim::LrScheduleKind> read_by;
};
const std::vector<ScheduleOption>& schedule_options();

// The spec of the run's schedule, `steps_per_epoch` optimizer steps an epoch.
optim::LrScheduleSpec lr_schedule_spec(const TrainConfig& config, int64_t steps_per_epoch);

// Every check of the schedule's options that the run's length does not decide
// (optim::check_lr_schedule_spec); throws UsageError naming the option.
void check_schedule_options(const TrainConfig& config);
// The run's LR schedule and its momentum schedule (null where it cycles none); throws
// UsageError naming the option where the options cannot make it.
std::unique_ptr<optim::LrSchedule> make_run_lr_schedule(const TrainConfig& config,
                                                        int64_t steps_per_epoch);
std::unique_ptr<optim::LrSchedule> make_run_momentum_schedule(const TrainConfig& config,
                                                              int64_t steps_per_epoch);

}  // namespace dp
