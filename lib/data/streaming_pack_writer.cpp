#include "data/streaming_pack_writer.h"

#include <cmath>

#include "core/error.h"
#include "data/packed_format.h"

namespace dp::data {

void write_packed_header(h5::File& file, const PackedHeader& header, h5::Checksum checksum) {
  file.set_attribute("format", std::string(packed::kFormat));
  file.set_attribute("format_version", packed::kFormatVersion);
  file.set_attribute("name", header.name);
  file.set_attribute("num_classes", static_cast<int64_t>(header.class_names.size()));
  file.set_attribute("height", header.height);
  file.set_attribute("width", header.width);
  file.set_attribute("channels", header.channels);
  file.write_strings("class_names", header.class_names, checksum);
}

void write_packed_statistics(h5::File& file, const std::vector<double>& mean,
                             const std::vector<double>& std) {
  file.set_attribute("mean", mean);
  file.set_attribute("std", std);
  for (const char* split : {"train", "test"}) {
    h5::Group group = file.group(split);
    group.set_attribute("mean", mean);
    group.set_attribute("std", std);
  }
}

void accumulate_channel_sums(const uint8_t* image_bytes, size_t pixels, int64_t channels,
                             std::vector<uint64_t>& sum, std::vector<uint64_t>& sum_sq) {
  const uint8_t* p = image_bytes;
  for (size_t i = 0; i < pixels; ++i)
    for (int64_t c = 0; c < channels; ++c, ++p) {
      sum[c] += *p;
      sum_sq[c] += uint32_t(*p) * uint32_t(*p);
    }
}

void mean_std_from_sums(const std::vector<uint64_t>& sum, const std::vector<uint64_t>& sum_sq,
                        uint64_t pixels, std::vector<double>& mean, std::vector<double>& std) {
  const size_t channels = sum.size();
  mean.assign(channels, 0);
  std.assign(channels, 0);
  if (pixels == 0) return;
  for (size_t c = 0; c < channels; ++c) {
    // var * n^2 * 255^2 = n*sum_sq - sum^2, exact in 128-bit integers.
    const unsigned __int128 n = pixels;
    const unsigned __int128 spread = n * sum_sq[c] - (unsigned __int128)sum[c] * sum[c];
    mean[c] = double(sum[c]) / (255.0 * double(pixels));
    std[c] = std::sqrt(double(spread)) / (255.0 * double(pixels));
  }
}

StreamingPackWriter::StreamingPackWriter(const std::string& path, PackedHeader header)
    : file_(path, h5::File::Mode::create_truncate),
      header_(std::move(header)),
      sum_(header_.channels, 0),
      sum_sq_(header_.channels, 0) {
  DP_CHECK(header_.height > 0 && header_.width > 0 && header_.channels > 0, "image shape");
  write_packed_header(file_, header_, h5::Checksum::fletcher32);
}

void StreamingPackWriter::begin_split(const std::string& split) {
  DP_CHECK(split == "train" || split == "test", "split {}", split);
  close_split();
  for (const auto& d : done_) DP_CHECK(d != split, "split {} written twice", split);
  split_ = split;
  rows_ = 0;
  group_.emplace(file_.create_group(split));
  const hsize_t h = header_.height, w = header_.width, c = header_.channels;
  // Zero rows to start with; the chunk sizes make the first dimension extendible.
  images_.emplace(group_->write<uint8_t>("images", {0, h, w, c}, nullptr, packed::kChunkRows));
  labels_.emplace(group_->write<uint8_t>("labels", {0}, nullptr, packed::kLabelChunkRows));
}

void StreamingPackWriter::append(int64_t count, const uint8_t* images, const uint8_t* labels) {
  DP_CHECK(images_.has_value(), "append before begin_split");
  if (count == 0) return;
  for (int64_t i = 0; i < count; ++i)
    DP_CHECK(labels[i] < header_.class_names.size(), "label {} of {} classes", labels[i],
             header_.class_names.size());
  images_->append_rows(hsize_t(count), images);
  labels_->append_rows(hsize_t(count), labels);
  rows_ += count;
  if (split_ != "train") return;
  accumulate_channel_sums(images, size_t(count) * header_.height * header_.width,
                          header_.channels, sum_, sum_sq_);
}

void StreamingPackWriter::close_split() {
  if (!group_) return;
  group_->set_attribute("count", rows_);
  (split_ == "train" ? train_rows_ : test_rows_) = rows_;
  done_.push_back(split_);
  labels_.reset();
  images_.reset();
  group_.reset();
}

int64_t StreamingPackWriter::count(const std::string& split) const {
  if (split == split_ && group_) return rows_;
  return split == "train" ? train_rows_ : test_rows_;
}

std::pair<std::vector<double>, std::vector<double>> StreamingPackWriter::finish(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& attributes) {
  close_split();
  DP_CHECK(done_.size() == 2, "finish with {} of 2 splits written", done_.size());
  std::vector<double> mean, std;
  mean_std_from_sums(sum_, sum_sq_, uint64_t(train_rows_) * header_.height * header_.width, mean,
                     std);
  write_packed_statistics(file_, mean, std);
  for (const auto& [name, values] : attributes)
    if (!values.empty()) file_.set_attribute(name, values);
  file_.flush();
  file_.close();
  return {mean, std};
}

}  // namespace dp::data
