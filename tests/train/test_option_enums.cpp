// The string-valued options held as enums (core/option_enum.h), and the checkpoint trigger
// that shares their tables: each table names every value once, in the enum's order, and parses
// back to it; a run's options hold the enum and record the name (metrics.h5's /config and the
// ranks' comparison read that text).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

#include "core/option_enum.h"
#include "data/packer.h"
#include "train/config.h"
#include "train/training_checkpoint.h"

namespace dp {
namespace {

template <class E>
void expect_one_name_per_value(const char* what) {
  SCOPED_TRACE(what);
  const auto names = enum_names(E{});
  std::set<std::string_view> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(names[i].value), i) << "the table follows the enum's order";
    EXPECT_TRUE(seen.insert(names[i].name).second) << names[i].name << " named twice";
    EXPECT_EQ(enum_from_name<E>(names[i].name), names[i].value);
    EXPECT_EQ(enum_name(names[i].value), names[i].name);
  }
  EXPECT_EQ(enum_from_name<E>("no-such-value"), std::nullopt);
}

TEST(OptionEnums, EveryTableNamesEachValueOnce) {
  expect_one_name_per_value<DeviceRequest>("--device");
  expect_one_name_per_value<Precision>("--precision");
  expect_one_name_per_value<CommRequest>("--comm");
  expect_one_name_per_value<AugmentOn>("--augment-on");
  expect_one_name_per_value<LossReduction>("--loss-reduction");
  expect_one_name_per_value<FaultMode>("--fail-mode");
  expect_one_name_per_value<optim::LrScheduleKind>("--lr-schedule");
  expect_one_name_per_value<optim::StepUnit>("--lr-step-unit");
  expect_one_name_per_value<optim::Anneal>("--onecycle-anneal");
  expect_one_name_per_value<data::PackFormat>("pack --format");
  expect_one_name_per_value<data::Cifar100Labels>("pack --labels");
  expect_one_name_per_value<CheckpointTrigger>("a checkpoint's trigger attribute");
}

TEST(OptionEnums, ARunHoldsTheValueAndRecordsItsName) {
  TrainConfig defaults;
  ASSERT_TRUE(parse_train_config({"--data", "x.h5"}, defaults));
  EXPECT_EQ(defaults.comm, CommRequest::automatic);
  EXPECT_EQ(defaults.effective.at("comm"), "auto");
  EXPECT_EQ(defaults.effective.at("lr-schedule"), "step");
  TrainConfig c;
  ASSERT_TRUE(parse_train_config(
      {"--data", "x.h5", "--comm", "mpi", "--augment-on", "device", "--loss-reduction", "sum",
       "--lr-schedule", "linear-warmup-decay", "--lr-step-unit", "epoch", "--device", "cpu",
       "--precision", "bf16", "--fail-mode", "stall"},
      c));
  EXPECT_EQ(c.comm, CommRequest::mpi);
  EXPECT_EQ(c.augment_on, AugmentOn::device);
  EXPECT_EQ(c.loss_reduction, LossReduction::sum);
  EXPECT_EQ(c.lr_schedule, optim::LrScheduleKind::linear_warmup_decay);
  EXPECT_EQ(c.lr_step_unit, optim::StepUnit::epoch);
  EXPECT_EQ(c.device, DeviceRequest::cpu);
  EXPECT_EQ(c.precision, Precision::bf16);
  EXPECT_EQ(c.fail_mode, FaultMode::stall);
  EXPECT_EQ(c.effective.at("lr-schedule"), "linear-warmup-decay");
  EXPECT_EQ(c.effective.at("augment-on"), "device");
  try {
    TrainConfig refused;
    parse_train_config({"--data", "x.h5", "--augment-on", "gpu"}, refused);
    ADD_FAILURE() << "--augment-on gpu accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "option --augment-on: 'gpu' must be auto, host or device");
  }
}

}  // namespace
}  // namespace dp
