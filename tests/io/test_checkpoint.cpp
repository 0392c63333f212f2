#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <map>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/hdf5.h"
#include "temp_dir.h"

namespace dp {
namespace {

TEST(Checkpoint, RoundTripsTensorsAndMeta) {
  testing::TempDir dir;
  std::vector<float> w = {1, 2, 3, 4, 5, 6}, b = {7, 8}, m = {0.5f, -0.5f};
  CheckpointSections out{{{"fc.weight", {2, 3}, w.data()}}, {{"bn.running_mean", {2}, b.data()}},
                         {{"fc.weight", {2}, m.data()}}};
  out.momentum[0].shape = {2};
  CheckpointMeta meta;
  meta.ints["epoch"] = 3;
  meta.strings["arch"] = "resnet20";
  save_checkpoint(dir.file("c.h5"), out, meta);
  EXPECT_FALSE(std::filesystem::exists(dir.file("c.h5.tmp")));

  std::vector<float> w2(6), b2(2), m2(2);
  CheckpointSections in{{{"fc.weight", {2, 3}, w2.data()}}, {{"bn.running_mean", {2}, b2.data()}},
                        {{"fc.weight", {2}, m2.data()}}};
  CheckpointMeta got = load_checkpoint(dir.file("c.h5"), in);
  EXPECT_EQ(w2, w);
  EXPECT_EQ(b2, b);
  EXPECT_EQ(m2, m);
  EXPECT_EQ(got.ints.at("epoch"), 3);
  EXPECT_EQ(got.strings.at("arch"), "resnet20");
  EXPECT_EQ(read_checkpoint_meta(dir.file("c.h5")).ints.at("format_version"),
            kCheckpointFormatVersion);
}

TEST(Checkpoint, ShapeMismatchAndMissingTensorNameTheTensor) {
  testing::TempDir dir;
  std::vector<float> w(6);
  save_checkpoint(dir.file("c.h5"), {{{"fc.weight", {2, 3}, w.data()}}, {}, {}}, {});
  std::vector<float> other(6);
  try {
    load_checkpoint(dir.file("c.h5"), {{{"fc.weight", {3, 2}, other.data()}}, {}, {}});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("fc.weight"), std::string::npos) << e.what();
  }
  try {
    load_checkpoint(dir.file("c.h5"), {{{"conv1.weight", {2, 3}, other.data()}}, {}, {}});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("conv1.weight"), std::string::npos) << e.what();
  }
}

// As torch's load_state_dict(strict=True): a tensor the model lacks is another network's.
TEST(Checkpoint, ATensorTheModelLacksIsRefusedByName) {
  testing::TempDir dir;
  std::vector<float> w(6), b(2);
  save_checkpoint(dir.file("c.h5"),
                  {{{"fc.weight", {2, 3}, w.data()}, {"fc.bias", {2}, b.data()}}, {}, {}}, {});
  std::vector<float> back(6);
  try {
    load_checkpoint(dir.file("c.h5"), {{{"fc.weight", {2, 3}, back.data()}}, {}, {}});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("c.h5") +
                                         ": params/fc.bias is not a tensor of this model (a "
                                         "checkpoint of another network?)");
  }
}

// A non-finite value in a model's state, or a negative running variance, is a damaged file
// (no run writes one, and evaluation would not show it: a ReLU maps NaN to 0): refused naming
// the tensor, in every section of the model's state.
TEST(Checkpoint, ANonFiniteStateOrNegativeVarianceIsRefusedByName) {
  testing::TempDir dir;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    const char* tensor;  // section/name
    float value;
  };
  for (const Case& c :
       {Case{"params/fc.weight", nan}, Case{"buffers/bn.running_var", -0.5f},
        Case{"buffers/bn.running_mean", inf}, Case{"optimizer/momentum/fc.weight", nan}}) {
    SCOPED_TRACE(c.tensor);
    std::vector<float> w = {1, 2, 3, 4}, mean = {0, 0}, var = {1, 1}, m = {0, 0, 0, 0};
    const std::map<std::string, float*> element = {{"params/fc.weight", &w[2]},
                                                   {"buffers/bn.running_mean", &mean[0]},
                                                   {"buffers/bn.running_var", &var[1]},
                                                   {"optimizer/momentum/fc.weight", &m[1]}};
    *element.at(c.tensor) = c.value;
    CheckpointSections out{
        {{"fc.weight", {2, 2}, w.data()}},
        {{"bn.running_mean", {2}, mean.data()}, {"bn.running_var", {2}, var.data()}},
        {{"fc.weight", {2, 2}, m.data()}}};
    save_checkpoint(dir.file("c.h5"), out, {});
    try {
      load_checkpoint(dir.file("c.h5"), out);
      ADD_FAILURE() << "loaded";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(fmt::format("{} holds", c.tensor)), std::string::npos)
          << e.what();
    }
  }
  // A variance of 0 (a constant channel) and -0 are variances.
  std::vector<float> w = {1, 2, 3, 4}, mean = {0, 0}, var = {0, -0.f};
  CheckpointSections ok{
      {{"fc.weight", {2, 2}, w.data()}},
      {{"bn.running_mean", {2}, mean.data()}, {"bn.running_var", {2}, var.data()}},
      {}};
  save_checkpoint(dir.file("ok.h5"), ok, {});
  EXPECT_NO_THROW(load_checkpoint(dir.file("ok.h5"), ok));
}

// HDF5 converts any number type on read: a tensor stored as int32 or float64 is refused by name
// (int32 weights would load truncated).
TEST(Checkpoint, ATensorOfAnotherTypeIsRefusedByName) {
  testing::TempDir dir;
  std::vector<float> w = {0.1f, 0.2f, 0.3f, 0.4f};
  CheckpointSections sections{{{"fc.weight", {2, 2}, w.data()}}, {}, {}};
  for (bool as_int : {true, false}) {
    save_checkpoint(dir.file("c.h5"), sections, {});
    {
      h5::File file(dir.file("c.h5"), h5::File::Mode::read_write);
      h5::Group params = file.group("params");
      if (as_int) {
        std::vector<int32_t> ints = {0, 0, 0, 0};
        params.write("fc.weight", {2, 2}, ints.data());
      } else {
        std::vector<double> doubles = {0.1, 0.2, 0.3, 0.4};
        params.write("fc.weight", {2, 2}, doubles.data());
      }
    }
    try {
      load_checkpoint(dir.file("c.h5"), sections);
      ADD_FAILURE() << "loaded";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("params/fc.weight is not stored as float32"),
                std::string::npos)
          << e.what();
    }
  }
}

// checkpoint.h5 made a link to each new named checkpoint (--keep-checkpoints) keeps the
// permissions it had, as a replaced file does (a group-writable run stays so).
TEST(Checkpoint, ThePublishedLinkKeepsItsPermissions) {
  testing::TempDir dir;
  std::vector<float> w = {1, 2};
  const std::string link = dir.file("checkpoint.h5");
  save_checkpoint(dir.file("checkpoint-e0001-s000001.h5"), {{{"w", {2}, w.data()}}, {}, {}}, {});
  publish_checkpoint_as(dir.file("checkpoint-e0001-s000001.h5"), link);
  namespace fs = std::filesystem;
  fs::permissions(link, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::group_write);
  const fs::perms chosen = fs::status(link).permissions();
  save_checkpoint(dir.file("checkpoint-e0002-s000002.h5"), {{{"w", {2}, w.data()}}, {}, {}}, {});
  publish_checkpoint_as(dir.file("checkpoint-e0002-s000002.h5"), link);
  EXPECT_EQ(fs::status(link).permissions(), chosen);
  EXPECT_TRUE(fs::equivalent(link, dir.file("checkpoint-e0002-s000002.h5")));
}

// A link that cannot be moved into place (a folder holds its name) is an IoError naming it, and
// leaves no "checkpoint.h5.tmp" behind (a full-size copy where links are not possible).
TEST(Checkpoint, AFailedPublishLeavesNoTmp) {
  testing::TempDir dir;
  std::vector<float> w = {1, 2};
  const std::string link = dir.file("checkpoint.h5");
  std::filesystem::create_directories(link + "/not-empty");
  save_checkpoint(dir.file("checkpoint-e0001-s000001.h5"), {{{"w", {2}, w.data()}}, {}, {}}, {});
  try {
    publish_checkpoint_as(dir.file("checkpoint-e0001-s000001.h5"), link);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(link + ": cannot move checkpoint"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(link + ".tmp"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("checkpoint-e0001-s000001.h5")));
}

// A publish cut short between its link and its rename leaves "checkpoint.h5.tmp" a hard link to
// another checkpoint (another run's, after a branch): the next save to checkpoint.h5 writes a
// new file there, not through the link.
TEST(Checkpoint, ASaveDoesNotWriteThroughALeftoverLinkAtItsTmp) {
  testing::TempDir dir;
  std::vector<float> w = {1, 2}, w_new = {9, 9};
  save_checkpoint(dir.file("other.h5"), {{{"w", {2}, w.data()}}, {}, {}}, {});
  std::filesystem::create_hard_link(dir.file("other.h5"), dir.file("checkpoint.h5.tmp"));
  save_checkpoint(dir.file("checkpoint.h5"), {{{"w", {2}, w_new.data()}}, {}, {}}, {});
  std::vector<float> back(2);
  load_checkpoint(dir.file("other.h5"), {{{"w", {2}, back.data()}}, {}, {}});
  EXPECT_EQ(back, w);
  load_checkpoint(dir.file("checkpoint.h5"), {{{"w", {2}, back.data()}}, {}, {}});
  EXPECT_EQ(back, w_new);
}

TEST(Checkpoint, FailedSaveLeavesPreviousCheckpointIntact) {
  testing::TempDir dir;
  std::vector<float> w = {1, 2};
  save_checkpoint(dir.file("c.h5"), {{{"w", {2}, w.data()}}, {}, {}}, {});
  // A directory where the temporary file must go makes the save fail before any rename.
  std::filesystem::create_directory(dir.file("c.h5.tmp"));
  std::vector<float> w_new = {9, 9};
  EXPECT_THROW(save_checkpoint(dir.file("c.h5"), {{{"w", {2}, w_new.data()}}, {}, {}}, {}), Error);
  std::vector<float> back(2);
  load_checkpoint(dir.file("c.h5"), {{{"w", {2}, back.data()}}, {}, {}});
  EXPECT_EQ(back, w);
}

TEST(Checkpoint, AMetricsFileOrDatasetIsNotACheckpoint) {
  testing::TempDir dir;
  for (const char* format : {"dptrain-metrics", "dptrain-dataset"}) {
    {
      h5::File file(dir.file("other.h5"), h5::File::Mode::create_truncate);
      file.set_attribute("format", std::string(format));
      file.set_attribute("format_version", int64_t{1});
    }
    std::vector<float> w(2);
    try {
      load_checkpoint(dir.file("other.h5"), {{{"w", {2}, w.data()}}, {}, {}});
      ADD_FAILURE() << format << " loaded as a checkpoint";
    } catch (const DataError& e) {
      EXPECT_NE(
          std::string(e.what()).find(std::string("not a checkpoint (a '") + format + "' file)"),
          std::string::npos)
          << e.what();
    }
  }
}

TEST(Checkpoint, FailedRenameRemovesTheTemporaryFile) {
  testing::TempDir dir;
  // A non-empty directory in the checkpoint's place: the rename fails after the whole write.
  std::filesystem::create_directories(dir.file("c.h5") + "/x");
  std::vector<float> w = {1, 2};
  EXPECT_THROW(save_checkpoint(dir.file("c.h5"), {{{"w", {2}, w.data()}}, {}, {}}, {}), IoError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("c.h5.tmp")));
}

}  // namespace
}  // namespace dp
