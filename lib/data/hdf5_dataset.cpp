#include "data/hdf5_dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "data/packed_format.h"

namespace dp::data {
namespace {

// Opening the file and the images dataset happens in the member initialisers, before the
// body can validate; these helpers turn a missing piece into a DataError that names the file.
h5::File open_file(const std::string& filename) {
  std::error_code ec;
  if (std::filesystem::is_directory(filename, ec))
    throw DataError(
        fmt::format("{}: a folder, not a dataset file (pack it with `dptrain pack`)", filename));
  if (!std::filesystem::exists(filename, ec))
    throw DataError(
        ec ? fmt::format("{}: {}", filename, ec.message())  // a loop of links...
           : fmt::format("{}: dataset file not found (pack one with `dptrain pack`)", filename));
  return h5::File(filename, h5::File::Mode::read);  // which refuses a pipe or a device
}

h5::Dataset open_images(const h5::File& file, const std::string& split) {
  if (!file.has(split))
    throw DataError(fmt::format("{}: not a dptrain dataset or no '{}' split (group /{} missing)",
                                file.filename(), split, split));
  if (!file.has(split + "/images"))
    throw DataError(fmt::format("{}: dataset /{}/images missing", file.filename(), split));
  return file.dataset(split + "/images", /*chunk_cache_bytes=*/0);
}

}  // namespace

void HDF5Dataset::fail(const std::string& problem) const {
  throw DataError(fmt::format("{}: split '{}': {}", filename_, split_, problem));
}

HDF5Dataset::HDF5Dataset(const std::string& filename, const std::string& split)
    : filename_(filename),
      split_(split),
      file_(open_file(filename)),
      images_((split == "train" || split == "test")
                  ? open_images(file_, split)
                  : throw UsageError(
                        fmt::format("{}: unknown split '{}' (train or test)", filename, split))) {
  try {
    const int64_t num_classes = read_layout();
    h5::Group group = file_.group(split_);
    read_statistics(group);
    const int64_t count = check_images(group);
    read_labels(group, count, num_classes);
  } catch (const DataError& e) {
    // Wrapper errors name the HDF5 object path, which starts with the file name already.
    const std::string message = e.what();
    if (message.rfind(filename_, 0) == 0) throw;
    throw DataError(fmt::format("{}: {}", filename_, message));
  }
}

int64_t HDF5Dataset::read_layout() {
  if (!file_.has_attribute("format") || file_.string_attribute("format") != packed::kFormat)
    fail(fmt::format("not a dptrain dataset (root attribute format != \"{}\")", packed::kFormat));
  const int64_t version = file_.int_attribute("format_version");
  if (version != packed::kFormatVersion)
    fail(fmt::format("format_version {} is not supported (expected {})", version,
                     packed::kFormatVersion));
  name_ = file_.string_attribute("name");
  if (file_.has_attribute("sources")) {
    try {  // what pack records; a user's own file may hold anything there, or nothing
      sources_ = file_.strings_attribute("sources");
    } catch (const DataError&) {
    }
  }
  height_ = file_.int_attribute("height");
  width_ = file_.int_attribute("width");
  channels_ = file_.int_attribute("channels");
  const int64_t num_classes = file_.int_attribute("num_classes");
  if (height_ <= 0 || width_ <= 0 || channels_ <= 0 || num_classes <= 0 || num_classes > 256)
    fail(fmt::format("bad shape attributes height={} width={} channels={} num_classes={}",
                     height_, width_, channels_, num_classes));
  if (!file_.has("class_names")) fail("dataset /class_names missing");
  class_names_ = file_.dataset("class_names").read_strings();
  if (static_cast<int64_t>(class_names_.size()) != num_classes)
    fail(fmt::format("/class_names holds {} names, num_classes is {}", class_names_.size(),
                     num_classes));
  return num_classes;
}

// Both splits are normalised with the training split's statistics (as torchvision users pass
// the training mean/std to Normalize for test too): /train's, or else the root's.
void HDF5Dataset::read_statistics(const h5::Group& group) {
  const std::optional<h5::Group> train =
      file_.has("train") ? std::optional<h5::Group>(file_.group("train")) : std::nullopt;
  const h5::Object* owner = train && train->has_attribute("mean")
                                ? static_cast<const h5::Object*>(&*train)
                            : file_.has_attribute("mean") ? &file_
                                                          : nullptr;
  if (!owner) fail("attribute mean missing (looked on /train and on /)");
  mean_ = owner->doubles_attribute("mean");
  std_ = owner->doubles_attribute("std");
  if (static_cast<int64_t>(mean_.size()) != channels_ ||
      static_cast<int64_t>(std_.size()) != channels_)
    fail(fmt::format("mean/std have {}/{} values for {} channels", mean_.size(), std_.size(),
                     channels_));
  // The only floats in a packed file: normalisation would spread a non-finite value into
  // every pixel, and from there into the loss of step 1. Pixels are scaled to [0, 1] first,
  // so statistics in 0-255 units would flatten every image to about -2.
  const char* scale = "(the statistics of pixels scaled to [0, 1], not 0-255)";
  for (double m : mean_)
    if (!(m >= 0 && m <= 1)) fail(fmt::format("mean value {} is not in [0, 1] {}", m, scale));
  for (double s : std_)
    if (!(s > 0 && s <= 0.5)) fail(fmt::format("std value {} is not in (0, 0.5] {}", s, scale));
  if (split_ != "train" && group.has_attribute("mean") &&
      (group.doubles_attribute("mean") != mean_ || group.doubles_attribute("std") != std_))
    fail(
        "mean/std differ from the training split's, with which both splits are normalised "
        "(write those on /test too, or none there)");
}

namespace {

// Whether `ds` holds uint8 values (a type dptrain does not read at all also says no).
bool holds_u8(const h5::Dataset& ds) {
  try {
    return ds.element_type() == h5::ElementType::u8;
  } catch (const DataError&) {
    return false;
  }
}

}  // namespace

// Found when the file is checked, on every rank alike, not at the first batch's read on the
// loader thread.
void HDF5Dataset::fail_on_missing_filter(const char* what, const h5::Dataset& ds) const {
  if (const std::string filter = ds.missing_filter(); !filter.empty())
    fail(
        fmt::format("{} are stored through the HDF5 filter {}, which this HDF5 library lacks "
                    "(repack them with dptrain pack, or without that compression)",
                    what, filter));
}

int64_t HDF5Dataset::check_images(const h5::Group& group) const {
  if (!holds_u8(images_)) fail("images are not uint8");
  fail_on_missing_filter("images", images_);
  const auto dims = images_.dims();
  if (dims.size() != 4)
    fail(fmt::format("images have rank {}, expected 4 (N,H,W,C)", dims.size()));
  if (int64_t(dims[1]) != height_ || int64_t(dims[2]) != width_ || int64_t(dims[3]) != channels_)
    fail(fmt::format("images are ({}, {}, {}, {}) but the attributes say H,W,C = {},{},{}",
                     dims[0], dims[1], dims[2], dims[3], height_, width_, channels_));
  // Nothing to train on or evaluate: an evaluation would report 0 of 0 images as a result.
  if (dims[0] == 0) fail("holds no images");
  if (group.has_attribute("count") && group.int_attribute("count") != int64_t(dims[0]))
    fail(fmt::format("attribute count is {} but the split holds {} images",
                     group.int_attribute("count"), dims[0]));
  return static_cast<int64_t>(dims[0]);
}

void HDF5Dataset::read_labels(const h5::Group& group, int64_t count, int64_t num_classes) {
  if (!group.has("labels")) fail("dataset labels missing");
  h5::Dataset labels = group.dataset("labels");
  if (!holds_u8(labels)) fail("labels are not uint8");
  fail_on_missing_filter("labels", labels);
  const auto label_dims = labels.dims();
  if (label_dims.size() != 1 || int64_t(label_dims[0]) != count)
    fail(fmt::format("labels shape does not match {} images", count));
  labels.read(labels_);
  auto worst = std::max_element(labels_.begin(), labels_.end());
  if (worst != labels_.end() && *worst >= num_classes)
    fail(fmt::format("label {} at index {} is not below num_classes={}", *worst,
                     worst - labels_.begin(), num_classes));
  // The labels were verified by that read; images are verified chunk by chunk as batches read
  // them (read_images). A file packed before checksums is read all the same, noted once.
  if (!labels.checksummed() || !images_.checksummed()) h5::note_unverified_once(filename_);
  // Training reads its split shuffled: filtered multi-row chunks are read and decompressed
  // whole for each image (tests/bench/results/2026-12-05-cpu-h5py-gzip-layout.txt).
  if (const hsize_t rows = images_.filtered_chunk_rows(); rows > 1 && split_ == "train")
    log::info(
        "note: {} stores its training images through a filter (a checksum or compression), {} rows "
        "a "
        "chunk: each shuffled read reads and unfilters a whole chunk, which can make reading "
        "the data the slowest part of a step; `dptrain pack`'s layout (one row a chunk) avoids "
        "it",
        filename_, rows);
}

void HDF5Dataset::read_images(const std::vector<int64_t>& indices, uint8_t* out) const {
  for (int64_t i : indices)
    if (i < 0 || i >= size())
      throw DataError(fmt::format("{}: split '{}': sample index {} out of range [0, {})", filename_,
                                  split_, i, size()));
  // One uncached hyperslab read per run of consecutive rows: the fastest read of shuffled rows.
  const int64_t sample = sample_bytes();
  for (size_t first = 0; first < indices.size();) {
    size_t end = first + 1;
    while (end < indices.size() && indices[end] == indices[end - 1] + 1) ++end;
    images_.read_rows(hsize_t(indices[first]), hsize_t(end - first), out + first * sample);
    first = end;
  }
}

}  // namespace dp::data
