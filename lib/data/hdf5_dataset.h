// One split ("train" / "test") of a packed dataset file (layout: data/packed_format.h).
// Everything is validated when opening, so a bad file fails before training starts, with a
// DataError naming the file and the problem. Every read is checked against the file's
// checksums (labels when opening, each image chunk when a batch reads it): a mismatch is a
// DataError naming the file and dataset. Labels are small and held in memory; images stay
// in the file and are read a batch at a time, one hyperslab per run of consecutive rows
// (why not one hyperslab-union selection: tests/bench/results/code-measurements-data-io.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/hdf5.h"

namespace dp::data {

class HDF5Dataset {
 public:
  HDF5Dataset(const std::string& filename, const std::string& split);

  const std::string& filename() const { return filename_; }
  const std::string& split() const { return split_; }
  const std::string& name() const { return name_; }  // "cifar10", "fashion-mnist", ...
  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  int64_t channels() const { return channels_; }
  int64_t sample_bytes() const { return height_ * width_ * channels_; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names_.size()); }
  const std::vector<std::string>& class_names() const { return class_names_; }
  // The root "sources" attribute ("<file> <sha256>" per source; empty where the file has none).
  const std::vector<std::string>& sources() const { return sources_; }
  // Per-channel normalisation statistics of the TRAIN split (in [0, 1] units).
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }
  const std::vector<uint8_t>& labels() const { return labels_; }

  // Images of the listed samples (any order, repeats allowed) into out[i * sample_bytes()...].
  // Reads only those rows. Thread-safe (the HDF5 wrapper serialises library calls).
  void read_images(const std::vector<int64_t>& indices, uint8_t* out) const;

 private:
  [[noreturn]] void fail(const std::string& problem) const;
  // The constructor's checks, in order; each fails naming the file, split and problem.
  int64_t read_layout();  // format, version, shape, class names; returns num_classes
  void read_statistics(const h5::Group& group);
  int64_t check_images(const h5::Group& group) const;  // returns the image count
  // DataError (fail) where `ds` needs an HDF5 filter this library lacks; `what` names it.
  void fail_on_missing_filter(const char* what, const h5::Dataset& ds) const;
  void read_labels(const h5::Group& group, int64_t count, int64_t num_classes);

  std::string filename_, split_, name_;
  int64_t height_ = 0, width_ = 0, channels_ = 0;
  std::vector<std::string> class_names_;
  std::vector<std::string> sources_;
  std::vector<double> mean_, std_;
  std::vector<uint8_t> labels_;
  h5::File file_;
  h5::Dataset images_;
};

}  // namespace dp::data
