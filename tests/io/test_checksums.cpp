// End-to-end integrity of what dp_io writes: every byte flipped inside a checkpoint's tensors
// or a metrics file's rows is caught by the reader and by verify_file, a flipped byte in
// HDF5's checksummed metadata fails cleanly, and files written without checksums still load.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "core/error.h"
#include "flip_bytes.h"
#include "io/checkpoint.h"
#include "io/file_verify.h"
#include "io/hdf5.h"
#include "io/metrics_writer.h"
#include "temp_dir.h"

namespace dp {
namespace {

constexpr int kFlipsPerFile = 40;

// A small checkpoint with every section: params, buffers, momentum, Lookahead average and
// train state.
struct CheckpointFixture {
  std::vector<float> conv = std::vector<float>(8 * 3 * 3 * 3), fc = std::vector<float>(10 * 8);
  std::vector<float> mean = std::vector<float>(8), tracked = {1};
  std::vector<float> conv_m = std::vector<float>(conv.size()), fc_m = std::vector<float>(fc.size());
  std::vector<float> fc_avg = std::vector<float>(fc.size()), mean_avg = std::vector<float>(8);
  std::vector<float> by_rank = std::vector<float>(2 * 9);
  std::vector<double> totals = std::vector<double>(2 * 11);

  CheckpointFixture() {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    for (auto* v : {&conv, &fc, &mean, &conv_m, &fc_m, &fc_avg, &mean_avg, &by_rank})
      for (auto& x : *v) x = normal(rng);
    for (auto& x : totals) x = normal(rng);
  }
  CheckpointSections sections() {
    CheckpointSections s;
    s.params = {{"conv1.weight", {8, 3, 3, 3}, conv.data()}, {"fc.weight", {10, 8}, fc.data()}};
    s.buffers = {{"bn1.running_mean", {8}, mean.data()},
                 {"bn1.num_batches_tracked", {1}, tracked.data()}};
    s.momentum = {{"conv1.weight", {8, 3, 3, 3}, conv_m.data()}, {"fc.weight", {10, 8}, fc_m.data()}};
    s.lookahead_params = {{"fc.weight", {10, 8}, fc_avg.data()}};
    s.lookahead_buffers = {{"bn1.running_mean", {8}, mean_avg.data()}};
    s.train_state_f32 = {{"buffers_by_rank", {2, 9}, by_rank.data()}};
    s.train_state_f64 = {{"epoch_totals", {2, 11}, totals.data()}};
    return s;
  }
  void save(const std::string& path, bool checksums = true) {
    CheckpointMeta meta;
    meta.ints["epoch"] = 2;
    meta.strings["arch"] = "resnet20";
    save_checkpoint(path, sections(), meta, checksums);
  }
};

const char* const kCheckpointPayloads[] = {
    "/params/conv1.weight",          "/params/fc.weight",
    "/buffers/bn1.running_mean",     "/buffers/bn1.num_batches_tracked",
    "/optimizer/momentum/conv1.weight", "/optimizer/momentum/fc.weight",
    "/lookahead/params/fc.weight",   "/lookahead/buffers/bn1.running_mean",
    "/train_state/buffers_by_rank",  "/train_state/epoch_totals"};

TEST(Checksums, EveryTensorOfANewCheckpointIsChecksummed) {
  testing::TempDir dir;
  CheckpointFixture ckpt;
  ckpt.save(dir.file("c.h5"));
  const FileVerification v = verify_file(dir.file("c.h5"));
  EXPECT_TRUE(v.verified()) << v.problem;
  EXPECT_EQ(v.datasets, 10);
  EXPECT_EQ(v.checksummed, 10);
}

TEST(Checksums, EveryFlipInsideACheckpointTensorIsDetectedByLoadAndVerify) {
  testing::TempDir dir;
  CheckpointFixture ckpt;
  ckpt.save(dir.file("c.h5"));
  for (const char* dataset : kCheckpointPayloads) {
    for (int seed = 0; seed < kFlipsPerFile / 4; ++seed) {
      std::mt19937_64 rng(seed * 7919 + std::hash<std::string>()(dataset));
      const std::string bad = dir.file("bad.h5");
      testing::copy_with_payload_flip(dir.file("c.h5"), dataset, rng, bad);
      CheckpointFixture into;
      try {
        load_checkpoint(bad, into.sections());
        ADD_FAILURE() << "flip in " << dataset << " (seed " << seed << ") loaded silently";
      } catch (const DataError& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(bad + ":" + dataset), std::string::npos) << message;
        EXPECT_NE(message.find("checksum mismatch"), std::string::npos) << message;
        EXPECT_NE(message.find("restore it"), std::string::npos) << message;
      }
      const FileVerification v = verify_file(bad);
      EXPECT_FALSE(v.ok) << dataset << " seed " << seed;
      EXPECT_EQ(v.failed_object, dataset);
      EXPECT_TRUE(v.failed_at_dataset);
    }
  }
}

TEST(Checksums, EveryFlipInAMetricsHistoryRowIsDetected) {
  testing::TempDir dir;
  {
    MetricsWriter writer(dir.file("metrics.h5"), {{"arch", "resnet20"}}, {{"version", "x"}}, 5);
    for (int e = 1; e <= 5; ++e) {
      EpochRecord rec;
      rec.epoch = e;
      rec.train_loss = 1.0 / e;
      writer.add_step({e * 10, e, 0.5, 0.5, 0.1});
      writer.append_epoch(rec);
    }
  }
  EXPECT_TRUE(verify_file(dir.file("metrics.h5")).verified());
  for (const char* dataset : {"/history/train_loss", "/history/val_acc", "/history/epoch",
                              "/steps/loss"}) {
    for (int seed = 0; seed < kFlipsPerFile / 4; ++seed) {
      std::mt19937_64 rng(seed + 101);
      const std::string bad = dir.file("bad.h5");
      testing::copy_with_payload_flip(dir.file("metrics.h5"), dataset, rng, bad);
      const FileVerification v = verify_file(bad);
      EXPECT_FALSE(v.ok) << dataset << " seed " << seed;
      EXPECT_EQ(v.failed_object, dataset);
      h5::File file(bad, h5::File::Mode::read);
      std::vector<double> values;
      EXPECT_THROW(file.dataset(dataset).read(values), DataError) << dataset << " seed " << seed;
    }
  }
}

TEST(Checksums, AFlipInChecksummedMetadataFailsCleanly) {
  testing::TempDir dir;
  CheckpointFixture ckpt;
  ckpt.save(dir.file("c.h5"));
  const auto offsets = testing::checksummed_metadata_offsets(dir.file("c.h5"));
  ASSERT_GT(offsets.size(), 48u + 8 * 24u);  // the superblock and one header per object at least
  std::mt19937_64 rng(11);
  for (int i = 0; i < kFlipsPerFile; ++i) {
    const uint64_t offset = offsets[rng() % offsets.size()];
    std::filesystem::copy_file(dir.file("c.h5"), dir.file("bad.h5"),
                               std::filesystem::copy_options::overwrite_existing);
    testing::flip_byte(dir.file("bad.h5"), offset, static_cast<uint8_t>(1 + rng() % 255));
    const FileVerification v = verify_file(dir.file("bad.h5"));
    EXPECT_FALSE(v.ok) << "flip at " << offset << " verified";
    EXPECT_FALSE(v.problem.empty());
    EXPECT_EQ(v.problem.find('\n'), std::string::npos) << v.problem;
    CheckpointFixture into;
    EXPECT_THROW(load_checkpoint(dir.file("bad.h5"), into.sections()), Error)
        << "flip at " << offset << " loaded";
  }
}

// What a reader uses has a checksum: no global heap (its variable-length strings have none, and
// a corrupted heap header crashes HDF5 1.10's reader) and no version-1 chunk B-tree (whose
// keys have none), in a checkpoint or in a metrics file.
TEST(Checksums, FilesHaveNoGlobalHeapNorUnchecksummedChunkIndex) {
  testing::TempDir dir;
  CheckpointFixture ckpt;
  ckpt.save(dir.file("c.h5"));
  {
    MetricsWriter writer(dir.file("metrics.h5"), {{"arch", "resnet20"}}, {{"version", "x"}}, 5);
    writer.add_step({10, 1, 0.5, 0.5, 0.1});
    writer.append_epoch(EpochRecord{});
  }
  for (const char* name : {"c.h5", "metrics.h5"}) {
    EXPECT_FALSE(testing::file_contains(dir.file(name), "GCOL")) << name;
    EXPECT_FALSE(testing::file_contains(dir.file(name), "TREE")) << name;
  }
  EXPECT_TRUE(testing::file_contains(dir.file("metrics.h5"), "EAHD"));  // extensible arrays
}

// Anywhere in the file (payload, metadata, chunk indexes, padding): a flip never crashes a
// reader and never changes a tensor or an attribute silently (bytes no reader uses may change
// without an error; the values must not).
TEST(Checksums, AFlipAnywhereNeverCrashesNorChangesAValueSilently) {
  testing::TempDir dir;
  CheckpointFixture ckpt;
  ckpt.save(dir.file("c.h5"));
  const auto size = std::filesystem::file_size(dir.file("c.h5"));
  std::mt19937_64 rng(13);
  int failed = 0;
  for (int i = 0; i < 2 * kFlipsPerFile; ++i) {
    const uint64_t offset = rng() % size;
    std::filesystem::copy_file(dir.file("c.h5"), dir.file("bad.h5"),
                               std::filesystem::copy_options::overwrite_existing);
    testing::flip_byte(dir.file("bad.h5"), offset, static_cast<uint8_t>(1 + rng() % 255));
    const FileVerification v = verify_file(dir.file("bad.h5"));  // must return, ok or not
    EXPECT_EQ(v.problem.find('\n'), std::string::npos);
    CheckpointFixture into;
    try {
      const CheckpointMeta meta = load_checkpoint(dir.file("bad.h5"), into.sections());
      EXPECT_TRUE(v.ok) << "flip at " << offset << " loads but fails verify: " << v.problem;
      EXPECT_TRUE(into.conv == ckpt.conv && into.fc == ckpt.fc && into.mean == ckpt.mean &&
                  into.conv_m == ckpt.conv_m && into.fc_m == ckpt.fc_m &&
                  into.fc_avg == ckpt.fc_avg && into.mean_avg == ckpt.mean_avg &&
                  into.by_rank == ckpt.by_rank && into.totals == ckpt.totals)
          << "flip at " << offset << " changed a tensor silently";
      EXPECT_EQ(meta.strings.at("arch"), "resnet20") << "flip at " << offset;
      EXPECT_EQ(meta.ints.at("epoch"), 2) << "flip at " << offset;
    } catch (const Error&) {
      EXPECT_FALSE(v.ok) << "flip at " << offset << " verifies but fails to load";
      ++failed;
    }
  }
  // Most of so small a file is tensor payload and object headers, where every flip fails.
  EXPECT_GT(failed, kFlipsPerFile);
}

TEST(Checksums, FilesWrittenWithoutChecksumsStillLoadUnverified) {
  testing::TempDir dir;
  CheckpointFixture ckpt;
  ckpt.save(dir.file("old.h5"), /*checksums=*/false);
  const FileVerification v = verify_file(dir.file("old.h5"));
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_FALSE(v.verified());
  EXPECT_EQ(v.checksummed, 0);
  CheckpointFixture into;
  load_checkpoint(dir.file("old.h5"), into.sections());
  EXPECT_EQ(into.conv, ckpt.conv);
  EXPECT_EQ(into.totals, ckpt.totals);
}

TEST(Checksums, StringDatasetsCarryADigestThatReadsCheck) {
  testing::TempDir dir;
  {
    h5::File file(dir.file("s.h5"), h5::File::Mode::create_truncate);
    file.write_strings("names", {"cat", "dog"});
    file.write_strings("old_names", {"cat", "dog"}, h5::Checksum::none);
  }
  h5::File file(dir.file("s.h5"), h5::File::Mode::read);
  EXPECT_TRUE(file.dataset("names").checksummed());
  EXPECT_FALSE(file.dataset("old_names").checksummed());
  EXPECT_EQ(file.dataset("names").read_strings(), (std::vector<std::string>{"cat", "dog"}));
  file.close();
  // The strings' bytes sit in the dataset's contiguous storage: change "dog" to "dot" there.
  std::ifstream in(dir.file("s.h5"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  ASSERT_NE(bytes.find("dog"), std::string::npos);
  for (size_t at = bytes.find("dog"); at != std::string::npos; at = bytes.find("dog", at + 1))
    testing::flip_byte(dir.file("s.h5"), at + 2, 'g' ^ 't');
  h5::File flipped(dir.file("s.h5"), h5::File::Mode::read);
  try {
    flipped.dataset("names").read_strings();
    FAIL() << "a changed string read silently";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/names: checksum mismatch"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dp
