#include "train/trained_data.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "core/error.h"
#include "data/hdf5_dataset.h"
#include "train/checkpoint_keys.h"

namespace dp {

namespace key = checkpoint_keys;

namespace {

// The lists are stored one item a line, a backslash or newline inside an item escaped (\\,
// \n), so that the text tells any two lists apart.
std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) text += '\n';
    for (const char ch : items[i]) {
      if (ch == '\\' || ch == '\n') text += '\\';
      text += ch == '\n' ? 'n' : ch;
    }
  }
  return text;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> items(1);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      items.emplace_back();
    } else if (text[i] == '\\' && i + 1 < text.size()) {
      items.back() += text[++i] == 'n' ? '\n' : text[i];
    } else {
      items.back() += text[i];
    }
  }
  return items;
}

// "<file> <sha256>" entries by file name.
std::map<std::string, std::string> by_name(const std::vector<std::string>& sources) {
  std::map<std::string, std::string> digests;
  for (const auto& entry : sources) {
    const size_t space = entry.rfind(' ');
    digests[entry.substr(0, space)] = space == std::string::npos ? "" : entry.substr(space + 1);
  }
  return digests;
}

}  // namespace

TrainedData trained_data(const data::HDF5Dataset& train_set) {
  return {train_set.class_names(), train_set.size(), train_set.sources(), train_set.mean(),
          train_set.std()};
}

void record_trained_data(const TrainedData& data, CheckpointMeta& meta) {
  meta.strings[key::kClassNames] = joined(data.class_names);
  meta.ints[key::kTrainSize] = data.train_size;
  if (!data.sources.empty()) meta.strings[key::kDataSources] = joined(data.sources);
  // Space-separated, each the shortest decimal that reads back as the double.
  meta.strings[key::kNormalizeMean] = fmt::format("{}", fmt::join(data.mean, " "));
  meta.strings[key::kNormalizeStd] = fmt::format("{}", fmt::join(data.std, " "));
}

bool trained_normalized(const CheckpointMeta& meta) {
  return meta.int_or(checkpoint_keys::kNormalize, 1) != 0;
}

Normalization recorded_normalization(const CheckpointMeta& meta, int64_t channels,
                                     const std::string& path) {
  Normalization stats;
  if (!meta.strings.count(key::kNormalizeMean) && !meta.strings.count(key::kNormalizeStd))
    return stats;
  for (auto [name, values] :
       {std::pair{key::kNormalizeMean, &stats.mean}, std::pair{key::kNormalizeStd, &stats.std}}) {
    std::istringstream text(meta.string_or(name, ""));
    for (double value; text >> value;) values->push_back(value);
    if (!text.eof() || int64_t(values->size()) != channels)
      throw DataError(fmt::format("{}: attribute {} is not {} numbers: '{}'", path, name, channels,
                                  meta.string_or(name, "")));
  }
  return stats;
}

std::string class_names_difference(const CheckpointMeta& meta,
                                   const std::vector<std::string>& names) {
  const auto it = meta.strings.find(key::kClassNames);
  if (it == meta.strings.end() || it->second == joined(names)) return "";
  const std::vector<std::string> then = split(it->second);
  if (then.size() != names.size())
    return fmt::format("{} classes in the checkpoint, {} in --data", then.size(), names.size());
  size_t k = 0;
  while (k + 1 < names.size() && then[k] == names[k]) ++k;
  return fmt::format("class {} is '{}' in the checkpoint, '{}' in --data", k, then[k], names[k]);
}

std::string trained_data_difference(const CheckpointMeta& meta, const TrainedData& data) {
  if (std::string classes = class_names_difference(meta, data.class_names); !classes.empty())
    return classes;
  if (const int64_t size = meta.int_or(key::kTrainSize, data.train_size); size != data.train_size)
    return fmt::format("{} training images in the checkpoint, {} in --data", size, data.train_size);
  // Compared where both name the same files: the same images from a .gz and from the
  // unpacked file have other digests, and resume alike.
  if (!meta.strings.count(key::kDataSources) || data.sources.empty()) return "";
  const auto then = by_name(split(meta.strings.at(key::kDataSources)));
  const auto now = by_name(data.sources);
  const bool same_files =
      std::equal(then.begin(), then.end(), now.begin(), now.end(),
                 [](const auto& a, const auto& b) { return a.first == b.first; });
  for (const auto& [file, digest] : then)
    if (same_files && digest != now.at(file))
      return fmt::format(
          "another {} in --data than the checkpoint's (its sha256 in the 'sources' attribute "
          "differs)",
          file);
  return "";
}

}  // namespace dp
