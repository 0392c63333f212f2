// The file list of an image folder in torchvision's ImageFolder layout, before any decoding:
// DIR/train/<class>/* and DIR/test/<class>/*, or DIR/<class>/* split into train and test by a
// stratified, seeded draw. Classes are the folder names in sorted (byte) order, as ImageFolder
// assigns them; within a class, files are in sorted name order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dp::data {

struct ImageFile {
  std::string path;      // as found under the source directory
  std::string relative;  // relative to the source directory ("train/cat/001.jpg"), for messages
  int label = 0;
};

struct FolderPlan {
  std::vector<std::string> class_names;
  std::vector<ImageFile> train, test;  // class-major, each class in name order
  bool split_by_fraction = false;      // DIR/<class>/* split by test_fraction
};

// The largest class count: labels are stored as uint8.
inline constexpr size_t kMaxFolderClasses = 256;

// Scans `dir`. Every regular file in a class folder counts as an image (names starting with
// '.' are ignored); what is not an image fails later, when decoded. Throws DataError naming the
// folder for: no class folders, an empty class folder, a file beside the class folders, train
// and test with different class sets, more than kMaxFolderClasses classes. The layout is split
// (DIR/train/<class>, DIR/test/<class>) when DIR/train or DIR/test holds folders; a train or
// test folder of images is a class of its own. `test_fraction` in (0, 1) is required without
// train/ and test/ folders and refused (UsageError) with them.
FolderPlan scan_image_folder(const std::string& dir, double test_fraction, uint64_t seed);

// Which files of one class of n go to the test split: round(fraction * n) of them (half up),
// but at most n - 1, so every class keeps a training image; drawn by a Fisher-Yates shuffle
// driven by splitmix64 seeded from (seed, label), so the split depends on the seed, the class
// and its file count only (not on the standard library). Sorted indices.
std::vector<size_t> test_indices(size_t n, double fraction, uint64_t seed, int label);

}  // namespace dp::data
