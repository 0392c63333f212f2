// HDF5Dataset: reads what the packer wrote, and rejects files that are not packed datasets
// with a DataError that names the file and the problem.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/hdf5_dataset.h"
#include "data_fixtures.h"
#include "error_matchers.h"
#include "io/hdf5.h"

namespace dp::data {
namespace {

using testing::TempDir;

class DatasetFile : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_synthetic_packed(path, 70, 20, 4, 5, 3); }
  // Opens the packed file for editing, applies `edit`, and expects opening `split` to fail
  // with a message naming the file and containing `problem`.
  template <typename Edit>
  void expect_rejected(Edit edit, const std::string& problem, const std::string& split = "train") {
    {
      h5::File f(path, h5::File::Mode::read_write);
      edit(f);
    }
    std::string message = testing::message_of<DataError>([&] { HDF5Dataset d(path, split); });
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << message;
  }
  TempDir dir;
  std::string path = dir / "synthetic.h5";
};

TEST_F(DatasetFile, ReadsListedRowsInRequestOrder) {
  HDF5Dataset d(path, "train");
  EXPECT_EQ(d.size(), 70);
  EXPECT_EQ(d.height(), 4);
  EXPECT_EQ(d.width(), 5);
  EXPECT_EQ(d.channels(), 3);
  EXPECT_EQ(d.num_classes(), 7);
  EXPECT_EQ(d.name(), "synthetic");
  std::vector<uint8_t> all;
  h5::File(path, h5::File::Mode::read).dataset("train/images").read(all);
  std::vector<int64_t> rows = {69, 3, 4, 5, 3, 0, 40};  // unsorted, a run, a repeat
  std::vector<uint8_t> got(rows.size() * d.sample_bytes());
  d.read_images(rows, got.data());
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t k = 0; k < d.sample_bytes(); ++k)
      ASSERT_EQ(got[i * d.sample_bytes() + k], all[rows[i] * d.sample_bytes() + k]) << i;
  EXPECT_THROW_WITH(d.read_images({70}, got.data()), DataError, "sample index 70 out of range");
  HDF5Dataset t(path, "test");
  EXPECT_EQ(t.size(), 20);
  EXPECT_EQ(t.mean(), d.mean());  // test split normalises with the train statistics
}

TEST_F(DatasetFile, MissingOrForeignFiles) {
  EXPECT_THROW_WITH(HDF5Dataset(dir / "absent.h5", "train"), DataError, "absent.h5");
  testing::write_file(dir / "text.h5", {'h', 'i'});
  EXPECT_THROW_WITH(HDF5Dataset(dir / "text.h5", "train"), DataError, "text.h5");
  EXPECT_THROW_WITH(HDF5Dataset(path, "validation"), UsageError, "unknown split");
  // An HDF5 file without any of the expected datasets.
  { h5::File f(dir / "empty.h5", h5::File::Mode::create_truncate); }
  EXPECT_THROW_WITH(HDF5Dataset(dir / "empty.h5", "train"), DataError, "empty.h5");
}

TEST_F(DatasetFile, MissingImages) {
  expect_rejected([](h5::File& f) { H5Ldelete(f.id(), "test/images", H5P_DEFAULT); },
                  "/test/images missing", "test");
}

TEST_F(DatasetFile, MissingLabels) {
  expect_rejected([](h5::File& f) { H5Ldelete(f.id(), "train/labels", H5P_DEFAULT); },
                  "labels missing");
}

TEST_F(DatasetFile, WrongFormatAttribute) {
  expect_rejected([](h5::File& f) { f.set_attribute("format", std::string("something-else")); },
                  "not a dptrain dataset");
}

TEST_F(DatasetFile, WrongVersion) {
  expect_rejected([](h5::File& f) { f.set_attribute("format_version", int64_t(2)); },
                  "format_version 2");
}

TEST_F(DatasetFile, ImagesNotUint8) {
  expect_rejected(
      [](h5::File& f) {
        std::vector<float> data(70 * 4 * 5 * 3, 0.f);
        f.group("train").write("images", {70, 4, 5, 3}, data.data());
      },
      "images are not uint8");
}

TEST_F(DatasetFile, ImagesWrongRank) {
  expect_rejected(
      [](h5::File& f) {
        std::vector<uint8_t> data(70 * 20 * 3, 0);
        f.group("train").write("images", {70, 20, 3}, data.data());
      },
      "rank 3");
}

TEST_F(DatasetFile, ImagesShapeDisagreesWithAttributes) {
  expect_rejected([](h5::File& f) { f.set_attribute("width", int64_t(6)); }, "attributes say");
}

TEST_F(DatasetFile, LabelsLengthMismatch) {
  expect_rejected(
      [](h5::File& f) {
        std::vector<uint8_t> labels(69, 0);
        f.group("train").write("labels", {69}, labels.data());
      },
      "labels shape does not match 70 images");
}

TEST_F(DatasetFile, LabelOutOfRange) {
  expect_rejected(
      [](h5::File& f) {
        std::vector<uint8_t> labels(70, 1);
        labels[33] = 7;
        f.group("train").write("labels", {70}, labels.data());
      },
      "label 7 at index 33");
}

TEST_F(DatasetFile, ClassNamesDisagreeWithNumClasses) {
  expect_rejected([](h5::File& f) { f.set_attribute("num_classes", int64_t(9)); },
                  "/class_names holds 7 names");
}

}  // namespace
}  // namespace dp::data
