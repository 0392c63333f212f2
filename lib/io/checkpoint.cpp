#include "io/checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "io/hdf5.h"

namespace dp {

namespace {

void write_section(const h5::Group& group, const std::vector<NamedBuffer>& tensors) {
  for (const auto& t : tensors) {
    std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
    group.write<float>(t.name, dims, t.data);
  }
}

void read_section(const h5::File& file, const std::string& section,
                  const std::vector<NamedBuffer>& tensors) {
  if (tensors.empty()) return;
  if (!file.has(section))
    throw DataError(fmt::format("{}: checkpoint has no '{}' group", file.filename(), section));
  h5::Group group = file.group(section);
  for (const auto& t : tensors) {
    if (!group.has(t.name))
      throw DataError(fmt::format("{}: checkpoint lacks {}/{}", file.filename(), section, t.name));
    h5::Dataset ds = group.dataset(t.name);
    auto dims = ds.dims();
    Shape shape(dims.begin(), dims.end());
    if (shape != t.shape)
      throw DataError(fmt::format("{}: {}/{} has shape {}, the model expects {}", file.filename(),
                                  section, t.name, to_string(shape), to_string(t.shape)));
    ds.read<float>(t.data, numel(t.shape));
  }
}

CheckpointMeta read_meta(const h5::File& file) {
  CheckpointMeta meta;
  if (!file.has_attribute("format_version"))
    throw DataError(fmt::format("{}: not a dptrain checkpoint (no format_version)", file.filename()));
  meta.ints["format_version"] = file.int_attribute("format_version");
  if (file.has_attribute("string_keys")) {
    for (const auto& key : file.strings_attribute("string_keys"))
      meta.strings[key] = file.string_attribute(key);
  }
  if (file.has_attribute("int_keys")) {
    for (const auto& key : file.strings_attribute("int_keys"))
      meta.ints[key] = file.int_attribute(key);
  }
  if (meta.ints["format_version"] != kCheckpointFormatVersion)
    throw DataError(fmt::format("{}: checkpoint format_version {} (this build reads {})",
                                file.filename(), meta.ints["format_version"],
                                kCheckpointFormatVersion));
  return meta;
}

}  // namespace

void save_checkpoint(const std::string& path, const CheckpointSections& sections,
                     const CheckpointMeta& meta) {
  const std::string tmp = path + ".tmp";
  {
    h5::File file(tmp, h5::File::Mode::create_truncate);
    file.set_attribute("format_version", kCheckpointFormatVersion);
    std::vector<std::string> int_keys, string_keys;
    for (const auto& [key, value] : meta.ints) {
      if (key == "format_version") continue;
      file.set_attribute(key, value);
      int_keys.push_back(key);
    }
    for (const auto& [key, value] : meta.strings) {
      file.set_attribute(key, value);
      string_keys.push_back(key);
    }
    file.set_attribute("int_keys", int_keys);
    file.set_attribute("string_keys", string_keys);
    write_section(file.require_group("params"), sections.params);
    write_section(file.require_group("buffers"), sections.buffers);
    if (!sections.momentum.empty())
      write_section(file.require_group("optimizer/momentum"), sections.momentum);
    file.flush();
    file.close();
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot rename checkpoint into place: {}", path, ec.message()));
}

CheckpointMeta load_checkpoint(const std::string& path, const CheckpointSections& sections) {
  h5::File file(path, h5::File::Mode::read);
  CheckpointMeta meta = read_meta(file);
  read_section(file, "params", sections.params);
  read_section(file, "buffers", sections.buffers);
  read_section(file, "optimizer/momentum", sections.momentum);
  return meta;
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  h5::File file(path, h5::File::Mode::read);
  return read_meta(file);
}

}  // namespace dp
