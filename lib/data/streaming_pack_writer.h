// Writes a packed dataset (data/packed_format.h) split by split in chunks of rows, so that a
// packer holds only the chunk it is writing: the image and label datasets grow by appending
// (their first dimension is extendible), the per-channel sums of the train images accumulate
// as rows arrive, and finish() writes the attributes that depend on all of them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/hdf5.h"

namespace dp::data {

struct PackedHeader {
  std::string name;
  std::vector<std::string> class_names;
  int64_t height = 0, width = 0, channels = 0;
};

class StreamingPackWriter {
 public:
  // Creates `path` (truncating it); every dataset checksummed with Fletcher-32.
  StreamingPackWriter(const std::string& path, PackedHeader header);
  // Splits are written one after the other: begin_split("train"), append..., then "test".
  void begin_split(const std::string& split);
  // `count` rows of H*W*C image bytes and their labels (each < the class count).
  void append(int64_t count, const uint8_t* images, const uint8_t* labels);
  // Writes the counts, the train split's mean/std, `attributes` as string-array root
  // attributes (skipped when empty) and flushes. Returns the train mean and std.
  std::pair<std::vector<double>, std::vector<double>> finish(
      const std::vector<std::pair<std::string, std::vector<std::string>>>& attributes);
  int64_t count(const std::string& split) const;

 private:
  void close_split();

  h5::File file_;
  PackedHeader header_;
  std::optional<h5::Group> group_;
  std::optional<h5::Dataset> images_, labels_;
  std::string split_;
  int64_t rows_ = 0, train_rows_ = 0, test_rows_ = 0;
  std::vector<uint64_t> sum_, sum_sq_;  // train split, per channel, exact
  std::vector<std::string> done_;
};

// The packed format's parts that both the whole-dataset and the streaming writer write: the
// root attributes that describe the dataset (format, version, name, class count, image shape)
// and /class_names; then, once the train split is known, its mean and std on the root and on
// both split groups (which must exist).
void write_packed_header(h5::File& file, const PackedHeader& header, h5::Checksum checksum);
void write_packed_statistics(h5::File& file, const std::vector<double>& mean,
                             const std::vector<double>& std);

// Adds `pixels` channels-last pixels of `channels` bytes each to the per-channel sums of values
// and of their squares (exact in 64 bits for any dataset that fits in memory or on disk).
void accumulate_channel_sums(const uint8_t* image_bytes, size_t pixels, int64_t channels,
                             std::vector<uint64_t>& sum, std::vector<uint64_t>& sum_sq);

// Per-channel mean and population std in [0, 1] from exact sums over `pixels` pixels.
void mean_std_from_sums(const std::vector<uint64_t>& sum, const std::vector<uint64_t>& sum_sq,
                        uint64_t pixels, std::vector<double>& mean, std::vector<double>& std);

}  // namespace dp::data
