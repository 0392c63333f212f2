#include "train/schedule_options.h"

#include <fmt/format.h>

#include "train/config.h"

namespace dp {

const std::vector<ScheduleOption>& schedule_options() {
  using K = optim::LrScheduleKind;
  static const std::vector<ScheduleOption> options = {
      {"lr-schedule", "kind", std::nullopt},
      {"lr", "base_lr", std::nullopt},
      {"epochs", "epochs", std::nullopt},
      {"lr-step-unit", "step_unit", std::nullopt},
      {"warmup-epochs", "warmup_epochs", std::nullopt},
      {"lr-milestones", "milestones", K::step},
      {"lr-gamma", "gamma", K::step},
      {"lr-points", "points", K::piecewise},
      {"min-lr", "min_lr", K::cosine},
      {"onecycle-pct-start", "pct_start", K::onecycle},
      {"onecycle-anneal", "anneal", K::onecycle},
      {"onecycle-div-factor", "div_factor", K::onecycle},
      {"onecycle-final-div-factor", "final_div_factor", K::onecycle},
      {"onecycle-cycle-momentum", "cycle_momentum", K::onecycle},
      {"onecycle-base-momentum", "base_momentum", K::onecycle},
      {"onecycle-max-momentum", "max_momentum", K::onecycle},
      {"lr-start-factor", "start_factor", K::linear_warmup_decay},
      {"warmup-fraction", "warmup_fraction", K::linear_warmup_decay},
      {"lr-end-factor", "end_factor", K::linear_warmup_decay}};
  return options;
}

optim::LrScheduleSpec lr_schedule_spec(const TrainConfig& config, int64_t steps_per_epoch) {
  optim::LrScheduleSpec spec;
  spec.kind = config.lr_schedule;
  spec.base_lr = config.lr;
  spec.steps_per_epoch = steps_per_epoch;
  spec.total_steps = total_steps(config, steps_per_epoch);
  spec.epochs = config.epochs;
  spec.points = config.lr_points;
  spec.start_factor = config.lr_start_factor;
  spec.end_factor = config.lr_end_factor;
  spec.warmup_fraction = config.warmup_fraction;
  if (config.lr_schedule == optim::LrScheduleKind::step)
    spec.milestones = config.lr_milestones;  // else unread
  spec.gamma = config.lr_gamma;
  spec.min_lr = config.min_lr;
  spec.pct_start = config.onecycle_pct_start;
  spec.anneal = config.onecycle_anneal;
  spec.cycle_momentum = config.onecycle_cycle_momentum;
  spec.base_momentum = config.onecycle_base_momentum;
  spec.max_momentum = config.onecycle_max_momentum;
  spec.div_factor = config.onecycle_div_factor;
  spec.final_div_factor = config.onecycle_final_div_factor;
  spec.warmup_epochs = config.warmup_epochs;
  spec.step_unit = config.lr_step_unit;
  return spec;
}

namespace {

// The option that sets `parameter`; --lr-schedule for what the options set together (the run's
// length in steps) or no option sets (the warm-up's start factor).
std::string option_of(const std::string& parameter) {
  for (const ScheduleOption& o : schedule_options())
    if (parameter == o.parameter) return fmt::format("--{}", o.option);
  return "--lr-schedule";
}

// Runs `make`, a schedule's LrScheduleError reworded as the option's UsageError.
template <typename Make>
auto naming_options(Make&& make) {
  try {
    return make();
  } catch (const optim::LrScheduleError& e) {
    throw UsageError(
        fmt::format("option {}: {}", option_of(e.parameter), e.reason_naming(option_of)));
  }
}

}  // namespace

void check_schedule_options(const TrainConfig& config) {
  // One step an epoch: the checks the length decides wait for the data (make_run_*).
  naming_options([&] {
    optim::check_lr_schedule_spec(lr_schedule_spec(config, 1));
    return 0;
  });
}

std::unique_ptr<optim::LrSchedule> make_run_lr_schedule(const TrainConfig& config,
                                                        int64_t steps_per_epoch) {
  return naming_options(
      [&] { return optim::make_lr_schedule(lr_schedule_spec(config, steps_per_epoch)); });
}

std::unique_ptr<optim::LrSchedule> make_run_momentum_schedule(const TrainConfig& config,
                                                              int64_t steps_per_epoch) {
  return naming_options(
      [&] { return optim::make_momentum_schedule(lr_schedule_spec(config, steps_per_epoch)); });
}

}  // namespace dp
