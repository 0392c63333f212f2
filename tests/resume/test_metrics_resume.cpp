// metrics.h5 of a resumed run: reopened (not truncated), history and step rows written after
// the checkpoint dropped, the resume recorded, and appending continues without duplicated or
// missing epochs.
#include <gtest/gtest.h>

#include "../io/temp_dir.h"
#include "core/error.h"
#include "io/hdf5.h"
#include "io/metrics_writer.h"
#include "train/run_setup.h"

namespace dp {
namespace {

std::vector<double> column(const std::string& path, const std::string& name) {
  h5::File file(path, h5::File::Mode::read);
  std::vector<double> values;
  file.dataset(name).read(values);
  return values;
}

void write_epoch(MetricsWriter& writer, int64_t epoch, int64_t steps_per_epoch) {
  for (int64_t s = 1; s <= steps_per_epoch; ++s)
    writer.add_step({(epoch - 1) * steps_per_epoch + s, epoch, 1.0 / s, 0.5, 0.1});
  EpochRecord record;
  record.epoch = epoch;
  record.train_loss = 10.0 * epoch;
  writer.append_epoch(record);
}

TEST(MetricsResume, ReopenDropsRowsAfterTheCheckpointAndContinues) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.h5");
  {
    MetricsWriter writer(path, {{"arch", "resnet8"}}, {{"compiler", "x"}}, 4);
    for (int64_t epoch = 1; epoch <= 3; ++epoch) write_epoch(writer, epoch, 4);
    writer.add_step({13, 4, 0.25, 0.5, 0.1});  // a step of epoch 4, flushed before a crash
    writer.flush_steps();
    EvaluationResult result;
    result.num_classes = 1;
    result.samples = 1;
    result.confusion = {1};
    writer.write_final(result, {"a"}, 0);
  }
  // Resume from a checkpoint after epoch 2 plus 1 step of epoch 3 (step 9).
  {
    // The resumed job (2 ranks) counts 3 steps an epoch, where the first counted 4.
    auto writer = MetricsWriter::reopen(path, 2, 9, 3, {{"checkpoint", "c.h5"}, {"step", "9"}},
                                        {{"arch", "resnet8"}, {"world-size", "2"}});
    // Reopened in memory: the file on disk is unchanged until the caller publishes it.
    EXPECT_EQ(column(path, "history/epoch"), (std::vector<double>{1, 2, 3}));
    EXPECT_TRUE(h5::File(path, h5::File::Mode::read).has("final"));
    writer->publish();
    EXPECT_EQ(column(path, "history/epoch"), (std::vector<double>{1, 2}));
    EXPECT_EQ(column(path, "steps/step").size(), 9u);
    EXPECT_EQ(h5::File(path, h5::File::Mode::read).group("steps").int_attribute("steps_per_epoch"),
              4);
    for (int64_t s = 10; s <= 12; ++s) writer->add_step({s, 3, 1.0 / s, 0.5, 0.1});
    EpochRecord record;
    record.epoch = 3;
    record.train_loss = 30;
    writer->append_epoch(record);
  }
  EXPECT_EQ(column(path, "history/epoch"), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(column(path, "history/train_loss"), (std::vector<double>{10, 20, 30}));
  std::vector<double> steps = column(path, "steps/step");
  ASSERT_EQ(steps.size(), 12u);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], double(i + 1));
  h5::File file(path, h5::File::Mode::read);
  EXPECT_FALSE(file.has("final")) << "a resumed run writes /final again at its end";
  EXPECT_EQ(file.group("resumes/1").string_attribute("checkpoint"), "c.h5");
  EXPECT_EQ(file.group("steps").int_attribute("steps_per_epoch"), 3) << "the last job's";
  // The resumed job's options beside the first job's, which /config keeps.
  EXPECT_EQ(file.group("resumes/1/config").string_attribute("world-size"), "2");
  EXPECT_EQ(file.group("config").string_attribute("arch"), "resnet8");
}

// A metrics file gives the options of the job before the next, the last resume's where there
// was one, and the run's log names every option the new job changed (changed_options).
TEST(MetricsResume, TheLastJobsOptionsAreReadAndTheChangesNamed) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.h5");
  const std::map<std::string, std::string> first = {
      {"lr", "0.1"},      {"run-name", "short run"},
      {"threads", "1"},   {"backend", "cpu, cores 0-1"},
      {"resume", "none"}, {"world-size", "1"}};
  {
    MetricsWriter writer(path, first, {}, 4);
    write_epoch(writer, 1, 4);
  }
  std::map<std::string, std::string> second = first;
  second["lr"] = "0.05";
  second["backend"] = "cpu, cores 2-3";  // another node's cores: not an option
  second["precision"] = "bf16";          // an option the first job's file does not record
  second["resume"] = "auto";             // how the job starts, not what it runs
  EXPECT_EQ(MetricsWriter::last_job_options(path, second), first);
  EXPECT_EQ(changed_options(first, second), "--lr 0.1 -> 0.05");
  MetricsWriter::reopen(path, 1, 4, 4, {{"step", "4"}}, second)->publish();
  std::map<std::string, std::string> third = second;
  third["run-name"] = "";
  third["threads"] = "2";
  third["world-size"] = "2";  // recorded beside the options, not one
  EXPECT_EQ(MetricsWriter::last_job_options(path, third), second)
      << "the last resume's, not the first job's";
  EXPECT_EQ(changed_options(second, third), "--run-name 'short run' -> '', --threads 1 -> 2");
  EXPECT_TRUE(MetricsWriter::last_job_options(dir.file("missing.h5"), third).empty());
  EXPECT_EQ(changed_options(second, second), "");
  EXPECT_EQ(other_run_problem(first, second), "") << "the same run with another --lr";
  third["seed"] = "5";
  EXPECT_EQ(other_run_problem(first, third), "") << "an option the file does not record";
  std::map<std::string, std::string> seeded = third;
  seeded["seed"] = "0";
  EXPECT_EQ(other_run_problem(third, seeded), "--seed 5, where this run's is 0");
}

TEST(MetricsResume, RefusesAFileThatIsNotMetrics) {
  testing::TempDir dir;
  { h5::File file(dir.file("other.h5"), h5::File::Mode::create_truncate); }
  EXPECT_THROW(MetricsWriter::reopen(dir.file("other.h5"), 1, 1, 5, {}), DataError);
}

}  // namespace
}  // namespace dp
