#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "io/hdf5.h"
#include "io/metrics_writer.h"
#include "temp_dir.h"

namespace dp {
namespace {

namespace fs = std::filesystem;

TEST(EvaluationResult, PrecisionRecallF1MatchHandComputedValues) {
  // rows = true, cols = predicted
  EvaluationResult r;
  r.num_classes = 3;
  r.confusion = {5, 1, 0,
                 2, 3, 0,
                 0, 0, 0};
  r.samples = 11;
  EXPECT_DOUBLE_EQ(r.accuracy(), 8.0 / 11);
  auto p = r.precision(), rc = r.recall(), f = r.f1();
  EXPECT_DOUBLE_EQ(p[0], 5.0 / 7);
  EXPECT_DOUBLE_EQ(p[1], 3.0 / 4);
  EXPECT_DOUBLE_EQ(p[2], 0.0);  // never predicted: 0 as scikit-learn reports it
  EXPECT_DOUBLE_EQ(rc[0], 5.0 / 6);
  EXPECT_DOUBLE_EQ(rc[1], 3.0 / 5);
  // 2 tp / (support + predicted), correctly rounded (2PR / (P + R) is the same in exact
  // arithmetic, not always in doubles).
  EXPECT_EQ(f[0], 10.0 / 13);
  EXPECT_EQ(f[1], 6.0 / 9);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_EQ(r.support(), (std::vector<int64_t>{6, 5, 0}));
}

TEST(MetricsWriter, HistoryIsReadableAfterEachEpochWhileFileStaysOpen) {
  testing::TempDir dir;
  MetricsWriter writer(dir.file("metrics.h5"), {{"arch", "resnet20"}}, {{"version", "x"}}, 5);
  for (int e = 1; e <= 3; ++e) {
    EpochRecord rec;
    rec.epoch = e;
    rec.train_loss = 1.0 / e;
    writer.append_epoch(rec);
    // A second reader sees every finished epoch while the writer still holds the file.
    h5::File reader(dir.file("metrics.h5"), h5::File::Mode::read);
    std::vector<double> epochs, losses;
    reader.dataset("history/epoch").read(epochs);
    reader.dataset("history/train_loss").read(losses);
    ASSERT_EQ(epochs.size(), static_cast<size_t>(e));
    EXPECT_DOUBLE_EQ(losses.back(), 1.0 / e);
    EXPECT_EQ(reader.group("config").string_attribute("arch"), "resnet20");
  }
  EvaluationResult r;
  r.num_classes = 2;
  r.confusion = {3, 1, 0, 4};
  r.samples = 8;
  writer.write_final(r, {"cat", "dog"}, 2);
  h5::File reader(dir.file("metrics.h5"), h5::File::Mode::read);
  std::vector<int64_t> cm;
  reader.dataset("final/confusion_matrix").read(cm);
  EXPECT_EQ(cm, r.confusion);
  EXPECT_DOUBLE_EQ(reader.group("final").double_attribute("accuracy"), 7.0 / 8);
  EXPECT_EQ(reader.group("final").int_attribute("tta"), 2);
  EXPECT_EQ(reader.dataset("final/class_names").read_strings(),
            (std::vector<std::string>{"cat", "dog"}));
}

// Continuing a run needs only read access to metrics.h5 (it is read whole and replaced), and
// the replacement keeps the file's permissions (a group-writable run stays group-writable).
TEST(MetricsWriter, ReopenReadsTheFileAndItsReplacementKeepsItsMode) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.h5");
  {
    MetricsWriter writer(path, {{"arch", "resnet20"}}, {}, 5);
    EpochRecord rec;
    rec.epoch = 1;
    writer.append_epoch(rec);
  }
  for (const auto mode : {fs::perms(0444), fs::perms(0664)}) {
    fs::permissions(path, mode);
    auto writer = MetricsWriter::reopen(path, 1, 0, 5, {{"resumed_from", "checkpoint.h5"}});
    writer->publish();
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::mask, mode);
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    h5::File reader(path, h5::File::Mode::read);
    EXPECT_TRUE(reader.has("resumes/1"));
  }
}

TEST(MetricsWriter, AnEmptyFileIsRefusedByName) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.h5");
  std::ofstream{path};
  try {
    MetricsWriter::reopen(path, 1, 0, 5, {});
    ADD_FAILURE() << "an empty metrics.h5 reopened";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": empty file (0 bytes)");
  }
}

// A metrics file of two epochs, then `edit` applied to it with the file open for writing.
std::string edited_metrics(testing::TempDir& dir, const std::function<void(h5::File&)>& edit) {
  const std::string path = dir.file("metrics.h5");
  {
    MetricsWriter writer(path, {{"arch", "resnet20"}}, {}, 5);
    for (int e = 1; e <= 2; ++e) {
      EpochRecord rec;
      rec.epoch = e;
      rec.val_acc = 0.25 * e;
      writer.append_epoch(rec);
    }
  }
  h5::File file(path, h5::File::Mode::read_write);
  edit(file);
  return path;
}

// Before a resume changes anything, the history it continues must be as written: every column
// a value per epoch, the epoch column present, a format this build writes. (It was continued:
// a column short by a row got an invented 0, a lost epoch column was recreated empty and the
// rows dropped.)
TEST(MetricsWriter, ReopenRefusesAHistoryNotAsWritten) {
  struct Case {
    const char* what;
    std::function<void(h5::File&)> edit;
    const char* says;
  };
  const Case cases[] = {
      {"a short column", [](h5::File& f) { f.dataset("history/val_acc").resize_rows(1); },
       "/history/val_acc has 1 rows, epoch 2"},
      {"no epoch column", [](h5::File& f) { f.group("history").remove("epoch"); },
       "/history/epoch is missing"},
      {"a short steps column", [](h5::File& f) { f.dataset("steps/lr").resize_rows(1); },
       "/steps/lr has 1 rows, step 0"},
      {"a newer format", [](h5::File& f) { f.set_attribute("format_version", int64_t{9}); },
       "metrics format_version 9"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    testing::TempDir dir;
    const std::string path = edited_metrics(dir, c.edit);
    const auto before = fs::last_write_time(path);
    try {
      MetricsWriter::reopen(path, 2, 0, 5, {});
      ADD_FAILURE() << "reopened";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
    }
    EXPECT_EQ(fs::last_write_time(path), before);
  }
}

// A column a file from before it existed lacks is added, NaN (not recorded) in the rows before.
TEST(MetricsWriter, ReopenAddsAMissingColumnAsNotRecorded) {
  testing::TempDir dir;
  const std::string path =
      edited_metrics(dir, [](h5::File& f) { f.group("history").remove("skipped_steps"); });
  MetricsWriter::reopen(path, 2, 0, 5, {})->publish();
  h5::File reader(path, h5::File::Mode::read);
  std::vector<double> skipped, val_acc;
  reader.dataset("history/skipped_steps").read(skipped);
  reader.dataset("history/val_acc").read(val_acc);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_TRUE(std::isnan(skipped[0]) && std::isnan(skipped[1]));
  EXPECT_EQ(val_acc, (std::vector<double>{0.25, 0.5}));
}

}  // namespace
}  // namespace dp
