#include "train/trained_data.h"

#include <fmt/format.h>

#include "data/hdf5_dataset.h"

namespace dp {
namespace {

// The lists are stored joined by newlines (a class or file name holding one is compared as
// joined, which still tells any two different lists apart when the counts also match).
std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) text += (i ? "\n" : "") + items[i];
  return text;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    items.push_back(text.substr(start, end - start));
  items.push_back(text.substr(start));
  return items;
}

}  // namespace

TrainedData trained_data(const data::HDF5Dataset& train_set) {
  return {train_set.class_names(), train_set.size(), train_set.sources()};
}

void record_trained_data(const TrainedData& data, CheckpointMeta& meta) {
  meta.strings["class_names"] = joined(data.class_names);
  meta.ints["train_size"] = data.train_size;
  if (!data.sources.empty()) meta.strings["data_sources"] = joined(data.sources);
}

std::string class_names_difference(const CheckpointMeta& meta,
                                   const std::vector<std::string>& names) {
  const auto it = meta.strings.find("class_names");
  if (it == meta.strings.end() || it->second == joined(names)) return "";
  const std::vector<std::string> then = split(it->second);
  if (then.size() != names.size())
    return fmt::format("{} classes there, {} in this file", then.size(), names.size());
  size_t k = 0;
  while (k + 1 < names.size() && then[k] == names[k]) ++k;
  return fmt::format("class {} is '{}' there, '{}' in this file", k, then[k], names[k]);
}

std::string trained_data_difference(const CheckpointMeta& meta, const TrainedData& data) {
  if (std::string classes = class_names_difference(meta, data.class_names); !classes.empty())
    return classes;
  if (const int64_t size = meta.int_or("train_size", data.train_size); size != data.train_size)
    return fmt::format("{} training images there, {} in this file", size, data.train_size);
  const std::string sources = meta.string_or("data_sources", "");
  if (!sources.empty() && !data.sources.empty() && sources != joined(data.sources))
    return "packed from other source files there (the 'sources' digests differ)";
  return "";
}

}  // namespace dp
