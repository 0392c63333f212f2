// Options that one LR schedule alone reads are refused beside another schedule, naming the
// option and its schedule, where the user put them there: on the command line, or in a
// config file whose --lr-schedule the command line did not replace. A config file's options
// for the schedule the command line replaced stay unused, as that replacement asks (nor are
// they validated). Milestones at or past the run's end are accepted, as torch's MultiStepLR
// accepts them: the README's shortened baseline runs depend on it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "optim/lr_schedule.h"
#include "train/config.h"
#include "train/schedule_callbacks.h"
#include "train/schedule_options.h"

namespace dp::test {
namespace {

struct ScheduleOption {
  const char* option;
  const char* value;
  const char* schedule;  // the one that reads it
};

const ScheduleOption kOptions[] = {
    {"lr-milestones", "0.5", "step"},
    {"lr-gamma", "0.2", "step"},
    {"lr-points", "0:1,1:0.5", "piecewise"},
    {"min-lr", "0.01", "cosine"},
    {"onecycle-pct-start", "0.25", "onecycle"},
    {"onecycle-anneal", "linear", "onecycle"},
    {"onecycle-div-factor", "10", "onecycle"},
    {"onecycle-final-div-factor", "100", "onecycle"},
    {"onecycle-cycle-momentum", "false", "onecycle"},
    {"onecycle-base-momentum", "0.8", "onecycle"},
    {"onecycle-max-momentum", "0.9", "onecycle"},
    {"lr-start-factor", "0.3", "linear-warmup-decay"},
    {"warmup-fraction", "0.3", "linear-warmup-decay"},
    {"lr-end-factor", "0.1", "linear-warmup-decay"},
};

std::vector<std::string> train_args(std::vector<std::string> extra) {
  std::vector<std::string> args{"--data", "x.h5", "--epochs", "4"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(ScheduleOptions, ReadByTheirScheduleAndRefusedBesideAnother) {
  for (const ScheduleOption& o : kOptions) {
    SCOPED_TRACE(o.option);
    const std::string flag = std::string("--") + o.option;
    TrainConfig ok;
    EXPECT_TRUE(parse_train_config(train_args({"--lr-schedule", o.schedule, flag, o.value}), ok));
    const std::string other = std::string(o.schedule) == "cosine" ? "step" : "cosine";
    try {
      TrainConfig c;
      parse_train_config(train_args({"--lr-schedule", other, flag, o.value}), c);
      ADD_FAILURE() << flag << " accepted beside --lr-schedule " << other;
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()), "option " + flag + ": is read only by --lr-schedule " +
                                           o.schedule + ", not " + other);
    }
  }
}

TEST(ScheduleOptions, AConfigFilesOptionsFollowWhereItsScheduleCameFrom) {
  const std::filesystem::path cfg =
      std::filesystem::temp_directory_path() / "dptrain_schedule_options.cfg";
  std::ofstream(cfg) << "lr-schedule = onecycle\nonecycle-pct-start = 0.25\n";
  TrainConfig replaced;  // the command line replaced the file's schedule: its option unused
  EXPECT_TRUE(parse_train_config(train_args({"--config", cfg.string(), "--lr-schedule", "cosine"}),
                                 replaced));
  EXPECT_EQ(replaced.lr_schedule, optim::LrScheduleKind::cosine);
  std::ofstream(cfg) << "lr-schedule = cosine\nonecycle-pct-start = 0.25\n";
  TrainConfig c;  // the file itself puts a onecycle option beside cosine
  EXPECT_THROW(parse_train_config(train_args({"--config", cfg.string()}), c), UsageError);
  std::filesystem::remove(cfg);
}

TEST(ScheduleOptions, AReplacedSchedulesOptionsAreNotValidated) {
  const std::filesystem::path cfg =
      std::filesystem::temp_directory_path() / "dptrain_replaced_schedule.cfg";
  std::ofstream(cfg) << "lr-schedule = step\nlr-milestones = 3,2.5\nlr-gamma = 0\n";
  {
    std::ofstream(cfg.string() + ".onecycle")
        << "lr-schedule = onecycle\nonecycle-anneal = cubic\n";
    TrainConfig c;  // a replaced schedule's value its own check would refuse
    EXPECT_TRUE(parse_train_config(
        train_args({"--config", cfg.string() + ".onecycle", "--lr-schedule", "cosine"}), c));
    TrainConfig onecycle;
    EXPECT_THROW(parse_train_config(train_args({"--config", cfg.string() + ".onecycle"}), onecycle),
                 UsageError);
    std::filesystem::remove(cfg.string() + ".onecycle");
    TrainConfig linear;
    EXPECT_TRUE(parse_train_config(
        train_args({"--lr-schedule", "onecycle", "--onecycle-anneal", "linear"}), linear));
    EXPECT_EQ(linear.onecycle_anneal, optim::Anneal::linear);
  }
  TrainConfig c;  // nor read when the run's schedule is built (2.5 is no whole epoch)
  EXPECT_TRUE(parse_train_config(
      train_args({"--config", cfg.string(), "--lr-schedule", "cosine", "--lr-step-unit", "epoch"}),
      c));
  EXPECT_NO_THROW(schedule_callbacks(c, 10));
  TrainConfig step;  // under their own schedule they are checked
  EXPECT_THROW(parse_train_config(train_args({"--config", cfg.string()}), step), UsageError);
  std::filesystem::remove(cfg);
}

TEST(ScheduleOptions, MilestonesPastTheRunsEndAreNeverReached) {
  TrainConfig c;
  EXPECT_TRUE(parse_train_config(train_args({"--lr-milestones", "2,4,8"}), c));
  EXPECT_EQ(c.lr_milestones, (std::vector<double>{2, 4, 8}));
  for (const char* bad : {"0", "3,2", "-1", "1e30", "inf", "nan"}) {  // 1e30: no step count
    TrainConfig refused;
    EXPECT_THROW(parse_train_config(train_args({"--lr-milestones", bad}), refused), UsageError)
        << bad;
  }
}

// An empty item between or after the commas is a typo, refused naming the option rather than
// read as the list without it.
TEST(ScheduleOptions, ListsWithAnEmptyItemAreRefused) {
  for (const char* bad : {"2,4,", ",2,4", "2,,4", ","}) {
    TrainConfig refused;
    EXPECT_THROW(parse_train_config(train_args({"--lr-milestones", bad}), refused), UsageError)
        << bad;
  }
  for (const char* bad : {"0:1,1:0.1,", "0:1,,1:0.1"}) {
    TrainConfig refused;
    EXPECT_THROW(
        parse_train_config(train_args({"--lr-schedule", "piecewise", "--lr-points", bad}), refused),
        UsageError)
        << bad;
  }
}

// The defaults (--lr 0.1, --lr-gamma 0.1, milestones at epochs 5 and 7.5 of 10) reach the update
// as torch's Python floats do: MultiStepLR's 0.1 * 0.1, rounded to float once by SGD's kernel,
// is 0.01f, where floats 0.1f * 0.1f would give 0.010000001f.
TEST(ScheduleOptions, StepDefaultsReachTheUpdateAsTorchsFloats) {
  TrainConfig c;
  parse_train_config({"--data", "x.h5"}, c);
  const auto schedule = optim::make_lr_schedule(lr_schedule_spec(c, 10));
  EXPECT_EQ(static_cast<float>(schedule->lr(49)), 0.1f);
  EXPECT_EQ(static_cast<float>(schedule->lr(50)), static_cast<float>(0.1 * 0.1));
  EXPECT_EQ(static_cast<float>(schedule->lr(75)), static_cast<float>(0.1 * 0.1 * 0.1));
  EXPECT_NE(static_cast<float>(schedule->lr(50)), 0.1f * 0.1f) << "the test tells the two apart";
}

// torch.optim.SGD takes lr=0 (weights stay, momentum still gathers) and CrossEntropyLoss
// label_smoothing=1 (the uniform target): both are accepted, under every schedule, and a
// negative LR or a smoothing above 1 is refused as torch refuses it.
TEST(ScheduleOptions, ZeroLrAndFullSmoothingAreAcceptedAsTorchAcceptsThem) {
  for (const char* schedule :
       {"constant", "step", "cosine", "onecycle", "piecewise", "linear-warmup-decay"}) {
    SCOPED_TRACE(schedule);
    TrainConfig c;
    std::vector<std::string> args{"--lr", "0", "--label-smoothing", "1", "--lr-schedule", schedule};
    if (std::string(schedule) == "piecewise") args.insert(args.end(), {"--lr-points", "0:1,1:0.1"});
    EXPECT_TRUE(parse_train_config(train_args(args), c));
    EXPECT_NO_THROW(schedule_callbacks(c, 10));
  }
  for (const auto& [option, bad] :
       {std::pair{"--lr", "-0.1"}, {"--label-smoothing", "1.01"}, {"--label-smoothing", "-0.1"}}) {
    TrainConfig refused;
    EXPECT_THROW(parse_train_config(train_args({option, bad}), refused), UsageError) << option;
  }
}

// The README's quick start (the baseline with --epochs 2), the scaling sweep (--epochs 2) and
// shorter runs (--epochs 1).
TEST(ScheduleOptions, TheBaselineConfigsParseShortened) {
  for (const char* name : {"baseline_resnet50_cifar10.cfg", "baseline_resnet50_cifar10_2gpu.cfg"})
    for (const char* epochs : {"1", "2"}) {
      SCOPED_TRACE(std::string(name) + " --epochs " + epochs);
      TrainConfig c;
      EXPECT_NO_THROW(parse_train_config({"--config", std::string(DP_JOBS_DIR "/") + name,
                                          "--epochs", epochs},
                                         c));
      EXPECT_FALSE(c.lr_milestones.empty());
    }
}

}  // namespace
}  // namespace dp::test
