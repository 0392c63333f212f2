// The pieces of `pack --format folder` that Pillow cannot check from outside: the split draw,
// the resize geometry, the decoders' refusals, and the streaming writer against the
// whole-dataset writer (tests/data/test_pack_folder.py checks the pixels against Pillow).
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "data/folder_source.h"
#include "data/hdf5_dataset.h"
#include "data/image_decode.h"
#include "data/image_resize.h"
#include "data/packer.h"
#include "data/streaming_pack_writer.h"
#include "data_fixtures.h"
#include "error_matchers.h"
#include "io/hdf5.h"

namespace dp::data {
namespace {

using testing::TempDir;

TEST(FolderSplit, RoundedShareOfEachClassDistinctSortedAndSeeded) {
  for (size_t n : {1, 2, 7, 10, 101}) {
    for (double f : {0.1, 0.25, 0.5, 0.9}) {
      const auto a = test_indices(n, f, 3, 0);
      // Rounded half up, but never the whole class: each keeps a training image.
      EXPECT_EQ(a.size(), std::min(size_t(std::floor(f * double(n) + 0.5)), n - 1))
          << n << " " << f;
      EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
      EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), a.size());
      for (size_t i : a) EXPECT_LT(i, n);
      EXPECT_EQ(a, test_indices(n, f, 3, 0));  // reproducible
    }
  }
  // Another seed or another class draws another subset (101 choose 25: a clash is a bug).
  EXPECT_NE(test_indices(101, 0.25, 3, 0), test_indices(101, 0.25, 4, 0));
  EXPECT_NE(test_indices(101, 0.25, 3, 0), test_indices(101, 0.25, 3, 1));
}

TEST(FolderResize, ShapeFollowsTorchvision) {
  int64_t h = 0, w = 0;
  resized_shape(480, 640, 224, h, w);  // int(224 * 640 / 480) = 298
  EXPECT_EQ(h, 224);
  EXPECT_EQ(w, 298);
  resized_shape(500, 375, 32, h, w);  // int(32 * 500 / 375) = 42
  EXPECT_EQ(h, 42);
  EXPECT_EQ(w, 32);
  resized_shape(7, 7, 32, h, w);
  EXPECT_EQ(h, 32);
  EXPECT_EQ(w, 32);
}

TEST(FolderResize, SameSizeIsTheCentreCropAndConstantStaysConstant) {
  DecodedImage img;
  img.height = 5;
  img.width = 9;
  img.channels = 1;
  for (int i = 0; i < 45; ++i) img.pixels.push_back(uint8_t(i));
  // Shorter side already 5: no resampling; columns 2..6 kept (round(4 / 2) = 2).
  const DecodedImage crop = resize_shorter_side_center_crop(img, 5);
  ASSERT_EQ(crop.pixels.size(), 25u);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) EXPECT_EQ(crop.pixels[y * 5 + x], y * 9 + x + 2);
  DecodedImage flat;
  flat.height = 37;
  flat.width = 23;
  flat.channels = 3;
  flat.pixels.assign(37 * 23 * 3, 77);
  for (int64_t s : {4, 16, 50}) {
    const DecodedImage out = resize_shorter_side_center_crop(flat, s);
    EXPECT_EQ(out.pixels, std::vector<uint8_t>(size_t(s * s * 3), 77)) << s;
  }
}

TEST(FolderDecode, RefusesWhatIsNotAWholeImage) {
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_THROW_WITH(decode_image(text.data(), text.size(), 3, "x.jpg"), DataError,
                    "x.jpg: not a JPEG or PNG image");
  const std::vector<uint8_t> jpeg_start = {0xff, 0xd8, 0xff, 0xe0, 0, 16};
  EXPECT_THROW_WITH(decode_image(jpeg_start.data(), jpeg_start.size(), 3, "a.jpg"), DataError,
                    "a.jpg: not a readable JPEG: the file ends in its header");
  const std::vector<uint8_t> png_start = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0};
  EXPECT_THROW_WITH(decode_image(png_start.data(), png_start.size(), 1, "b.png"), DataError,
                    "b.png: not a readable PNG");
  EXPECT_THROW_WITH(decode_image(nullptr, 0, 3, "empty.png"), DataError, "empty.png");
  // The header-only size read refuses the same files.
  EXPECT_THROW_WITH(read_image_size(text.data(), text.size(), "x.jpg"), DataError,
                    "x.jpg: not a JPEG or PNG image");
  EXPECT_THROW_WITH(read_image_size(jpeg_start.data(), jpeg_start.size(), "a.jpg"), DataError,
                    "a.jpg: not a readable JPEG: the file ends in its header");
  EXPECT_THROW_WITH(read_image_size(png_start.data(), png_start.size(), "b.png"), DataError,
                    "b.png: not a readable PNG");
}

TEST(FolderDecode, GreyscaleConversionsArePillows) {
  DecodedImage rgb;
  rgb.height = 1;
  rgb.width = 3;
  rgb.channels = 3;
  rgb.pixels = {255, 0, 0, 0, 255, 0, 10, 20, 30};
  // Pillow: Image.new("RGB", ...).convert("L") gives 76, 150 and 18 for these pixels.
  EXPECT_EQ(convert_channels(rgb, 1).pixels, (std::vector<uint8_t>{76, 150, 18}));
  DecodedImage grey;
  grey.height = grey.width = 1;
  grey.channels = 1;
  grey.pixels = {9};
  EXPECT_EQ(convert_channels(grey, 3).pixels, (std::vector<uint8_t>{9, 9, 9}));
}

TEST(StreamingPackWriter, ChunkedAppendsEqualTheWholeDatasetWriter) {
  TempDir dir;
  RawDataset raw;
  raw.name = "stream";
  raw.class_names = {"a", "b", "c"};
  raw.height = 4;
  raw.width = 3;
  raw.channels = 3;
  raw.train = {10, testing::random_bytes(10 * 36, 1), testing::random_bytes(10, 2, 3)};
  raw.test = {4, testing::random_bytes(4 * 36, 3), testing::random_bytes(4, 4, 3)};
  std::vector<double> mean, std;
  channel_mean_std(raw.train, 3, mean, std);
  write_packed(raw, dir / "whole.h5", mean, std);
  {
    StreamingPackWriter writer(dir / "stream.h5", {raw.name, raw.class_names, 4, 3, 3});
    writer.begin_split("train");
    writer.append(3, raw.train.images.data(), raw.train.labels.data());
    writer.append(0, nullptr, nullptr);
    writer.append(7, raw.train.images.data() + 3 * 36, raw.train.labels.data() + 3);
    writer.begin_split("test");
    writer.append(4, raw.test.images.data(), raw.test.labels.data());
    auto [m, s] = writer.finish({});
    EXPECT_EQ(m, mean);
    EXPECT_EQ(s, std);
  }
  for (const char* split : {"train", "test"}) {
    HDF5Dataset whole(dir / "whole.h5", split), stream(dir / "stream.h5", split);
    ASSERT_EQ(stream.size(), whole.size());
    EXPECT_EQ(stream.labels(), whole.labels());
    std::vector<uint8_t> a(36), b(36);
    for (int64_t i = 0; i < whole.size(); ++i) {
      whole.read_images({i}, a.data());
      stream.read_images({i}, b.data());
      EXPECT_EQ(a, b) << split << " row " << i;
    }
    EXPECT_EQ(stream.mean(), whole.mean());
  }
  h5::File file(dir / "stream.h5", h5::File::Mode::read);
  EXPECT_TRUE(file.dataset("train/images").checksummed());
  EXPECT_TRUE(file.dataset("test/labels").checksummed());
}

}  // namespace
}  // namespace dp::data
