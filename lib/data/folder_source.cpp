#include "data/folder_source.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <utility>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/utf8.h"

namespace dp::data {
namespace {

namespace fs = std::filesystem;

bool hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

// Sorted names of the visible entries of `dir`; refuses files beside class folders.
std::vector<std::string> class_folders(const fs::path& dir, const std::string& shown) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(fmt::format("{}: not a directory", shown));
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (hidden(entry.path())) continue;
    if (!entry.is_directory(ec))
      throw DataError(fmt::format("{}/{}: a file beside the class folders (each class is a "
                                  "folder of images)",
                                  shown, entry.path().filename().string()));
    const std::string name = entry.path().filename().string();
    // Class names are stored as UTF-8 text, which h5py decodes; their byte order is then
    // their code points' order, as ImageFolder sorts them. (The error line escapes the bytes.)
    if (!utf8::valid(name))
      throw DataError(
          fmt::format("{}/{}: a class folder whose name is not UTF-8 (class names "
                      "are stored as UTF-8 text); rename it",
                      shown, name));
    // Printed in logs, `inspect` and reports as one line each.
    if (utf8::escaped(name) != name)
      throw DataError(
          fmt::format("{}/{}: a class folder whose name has a control character or a line "
                      "separator (class names are printed one per line); rename it",
                      shown, name));
    names.push_back(name);
  }
  if (ec) throw DataError(fmt::format("{}: cannot list: {}", shown, ec.message()));
  std::sort(names.begin(), names.end());
  if (names.empty()) throw DataError(fmt::format("{}: no class folders", shown));
  if (names.size() > kMaxFolderClasses)
    throw DataError(fmt::format("{}: {} classes, at most {} (labels are stored as uint8)", shown,
                                names.size(), kMaxFolderClasses));
  return names;
}

// The files of one class folder, in name order. Messages name the folder as found.
std::vector<ImageFile> class_files(const fs::path& dir, const std::string& relative, int label) {
  const std::string shown = dir.string();
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (hidden(entry.path())) continue;
    if (!entry.is_regular_file(ec))
      throw DataError(
          fmt::format("{}/{}: {}", shown, entry.path().filename().string(),
                      entry.is_symlink(ec) && !fs::exists(entry.path(), ec)
                          ? "a link to nothing (its target is missing, or a loop of links)"
                          : "not a regular file (class folders hold images only)"));
    names.push_back(entry.path().filename().string());
  }
  if (ec) throw DataError(fmt::format("{}: cannot list: {}", shown, ec.message()));
  if (names.empty()) throw DataError(fmt::format("{}: empty class folder", shown));
  // ImageFolder's order: Python's, which differs from the bytes' only for names that are not
  // UTF-8 (another encoding's bytes sort after U+D7FF there).
  std::vector<std::pair<std::u32string, std::string>> keyed;  // each name decoded once
  for (auto& n : names) keyed.emplace_back(utf8::python_code_points(n), std::move(n));
  std::sort(keyed.begin(), keyed.end());
  std::vector<ImageFile> files;
  for (const auto& [key, n] : keyed)
    files.push_back({(dir / n).string(), relative + "/" + n, label});
  return files;
}

std::vector<ImageFile> split_files(const fs::path& root, const std::string& split,
                                   const std::vector<std::string>& classes) {
  std::vector<ImageFile> files;
  for (size_t c = 0; c < classes.size(); ++c) {
    auto more = class_files(root / split / classes[c], split + "/" + classes[c], int(c));
    files.insert(files.end(), more.begin(), more.end());
  }
  return files;
}

// Names the first class of `have` missing from `other_split` (both lists sorted).
void check_same_classes(const std::string& dir, const std::vector<std::string>& have,
                        const std::vector<std::string>& other, const char* other_split) {
  for (const auto& name : have)
    if (!std::binary_search(other.begin(), other.end(), name))
      throw DataError(fmt::format("{}/{}/{}: class folder missing (train and test must have "
                                  "the same classes)",
                                  dir, other_split, name));
}

// Whether `dir` is a folder that holds folders: a split of class folders (DIR/train/<class>),
// where a class folder (a class that happens to be called "train") holds images.
bool holds_folders(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (!hidden(entry.path()) && entry.is_directory(ec)) return true;
  return false;
}

// In the DIR/train + DIR/test layout, refuses a visible folder beside the two (its images would
// be left out: a validation split, a class put in the wrong place) and names, in the log, the
// files beside them it leaves out (a README, a licence).
void check_beside_splits(const fs::path& root, const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (hidden(entry.path()) || name == "train" || name == "test") continue;
    std::error_code entry_ec;  // a link to nothing is a file here, not a failed listing
    if (entry.is_directory(entry_ec))
      throw DataError(
          fmt::format("{}/{}: a folder beside train/ and test/ (its images would be "
                      "left out); move it, or hide it with a leading '.'",
                      dir, name));
    files.push_back(name);
  }
  if (ec) throw DataError(fmt::format("{}: cannot list: {}", dir, ec.message()));
  std::sort(files.begin(), files.end());
  if (!files.empty())
    log::info("pack: {}: left out, beside train/ and test/: {}", dir, fmt::join(files, ", "));
}

}  // namespace

std::vector<size_t> test_indices(size_t n, double fraction, uint64_t seed, int label) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  uint64_t state = hash::splitmix64_mix(seed ^ hash::splitmix64_mix(uint64_t(label) + 1));
  for (size_t i = n; i > 1; --i) {
    // A plain modulo: its bias, (2^64 mod i) / 2^64, is below 2^-40 for classes of < 2^24 files.
    const size_t j = size_t(hash::splitmix64_next(state) % i);
    std::swap(order[i - 1], order[j]);
  }
  // Rounded half up, and at most n - 1: every class keeps a training image. The fraction is the
  // double nearest its decimal text, so a product that is a half in decimal (0.29 x 50 = 14.5)
  // can land a few ulps below it: within 1e-12 (relative) of a half counts as the half.
  const double share = fraction * double(n);
  const auto take = static_cast<size_t>(std::floor(share + 0.5 + share * 1e-12));
  std::vector<size_t> chosen(order.begin(), order.begin() + std::min(take, n > 0 ? n - 1 : 0));
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

FolderPlan scan_image_folder(const std::string& dir, double test_fraction, uint64_t seed) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw DataError(fmt::format("{}: not a directory", dir));
  FolderPlan plan;
  const bool has_train = fs::is_directory(root / "train", ec);
  const bool has_test = fs::is_directory(root / "test", ec);
  if (holds_folders(root / "train") || holds_folders(root / "test")) {
    if (!has_train || !has_test)
      throw DataError(fmt::format("{}: has a {} folder but no {} folder", dir,
                                  has_train ? "train" : "test", has_train ? "test" : "train"));
    if (test_fraction != 0)
      throw UsageError(fmt::format("--test-fraction: {} already has train/ and test/ folders",
                                   dir));
    check_beside_splits(root, dir);
    plan.class_names = class_folders(root / "train", dir + "/train");
    const auto test_classes = class_folders(root / "test", dir + "/test");
    const std::vector<std::string>& train_classes = plan.class_names;
    check_same_classes(dir, train_classes, test_classes, "test");
    check_same_classes(dir, test_classes, train_classes, "train");
    plan.train = split_files(root, "train", plan.class_names);
    plan.test = split_files(root, "test", plan.class_names);
    return plan;
  }
  if (test_fraction == 0)
    throw UsageError(fmt::format("--test-fraction: {} has no train/ and test/ folders; give "
                                 "the test split's fraction in (0, 1)",
                                 dir));
  if (!(test_fraction > 0 && test_fraction < 1))
    throw UsageError(fmt::format("--test-fraction: {} is not in (0, 1)", test_fraction));
  plan.split_by_fraction = true;
  plan.class_names = class_folders(root, dir);
  for (size_t c = 0; c < plan.class_names.size(); ++c) {
    auto files = class_files(root / plan.class_names[c], plan.class_names[c], int(c));
    const auto chosen = test_indices(files.size(), test_fraction, seed, int(c));
    size_t next = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      const bool to_test = next < chosen.size() && chosen[next] == i;
      next += to_test;
      (to_test ? plan.test : plan.train).push_back(std::move(files[i]));
    }
  }
  if (plan.test.empty() || plan.train.empty())
    throw UsageError(fmt::format("--test-fraction: {} of {}'s images leaves the {} split empty",
                                 test_fraction, dir, plan.test.empty() ? "test" : "train"));
  return plan;
}

}  // namespace dp::data
