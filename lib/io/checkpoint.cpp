#include "io/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <type_traits>

#include "io/durable_file.h"
#include "io/hdf5.h"

namespace fs = std::filesystem;

namespace dp {

namespace {

template <typename Named>
void write_section(const h5::Group& group, const std::vector<Named>& tensors,
                   h5::Checksum checksum) {
  for (const auto& t : tensors) {
    std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
    group.write(t.name, dims, t.data, 0, 0, checksum);
  }
}

// Reads `tensors` from `section`. A model's state (`whole`) must match it name for name, as
// torch's load_state_dict(strict=True) requires: a tensor the model lacks means another
// network (resnet20's weights would otherwise load into resnet8's first layers).
template <typename Named>
void read_section(const h5::File& file, const std::string& section,
                  const std::vector<Named>& tensors, bool whole = true) {
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
    // HDF5 would convert any number type on read (int32 weights truncated to 0 and loaded).
    using Element = std::remove_pointer_t<decltype(t.data)>;
    if (ds.element_type() != h5::element_type_of<Element>())
      throw DataError(fmt::format("{}: {}/{} is not stored as {} (a checkpoint's type)",
                                  file.filename(), section, t.name,
                                  std::is_same_v<Element, float> ? "float32" : "float64"));
    ds.read(t.data, numel(t.shape));  // a checksum mismatch throws, naming the dataset
    if (!ds.checksummed()) h5::note_unverified_once(file.filename());
  }
  if (whole)
    for (const std::string& name : group.children())
      if (std::none_of(tensors.begin(), tensors.end(),
                       [&](const Named& t) { return t.name == name; }))
        throw DataError(
            fmt::format("{}: {}/{} is not a tensor of this model (a checkpoint of "
                        "another network?)",
                        file.filename(), section, name));
}

// A model's state is finite and its running variances are not negative: no NaN or Inf reaches
// a run's weights (the update is skipped) and a variance is an average of squares, so such a
// value is a damaged file, which evaluation would not show (a ReLU maps NaN to 0).
void check_state_values(const h5::File& file, const std::string& section,
                        const std::vector<NamedBuffer>& tensors) {
  for (const NamedBuffer& t : tensors) {
    const bool variance = t.name.ends_with("running_var");
    const int64_t n = numel(t.shape);
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(t.data[i]) || (variance && t.data[i] < 0))
        throw DataError(
            fmt::format("{}: {}/{} holds {} at element {}: a damaged checkpoint (a "
                        "model's state is finite{})",
                        file.filename(), section, t.name, t.data[i], i,
                        variance ? ", a variance not negative" : ""));
  }
}

CheckpointMeta read_meta(const h5::File& file) {
  CheckpointMeta meta;
  // Packed datasets and metrics files name their format (checkpoints do not) beside a
  // format_version of their own.
  if (file.has_attribute("format"))
    throw DataError(fmt::format("{}: not a checkpoint (a '{}' file)", file.filename(),
                                file.string_attribute("format")));
  if (!file.has_attribute(kFormatVersionAttribute))
    throw DataError(fmt::format("{}: not a dptrain checkpoint (no format_version)", file.filename()));
  meta.ints[kFormatVersionAttribute] = file.int_attribute(kFormatVersionAttribute);
  if (file.has_attribute("string_keys")) {
    for (const auto& key : file.strings_attribute("string_keys"))
      meta.strings[key] = file.string_attribute(key);
  }
  if (file.has_attribute("int_keys")) {
    for (const auto& key : file.strings_attribute("int_keys"))
      meta.ints[key] = file.int_attribute(key);
  }
  const int64_t version = meta.ints[kFormatVersionAttribute];
  if (version < kOldestReadableCheckpointFormat || version > kCheckpointFormatVersion)
    throw DataError(fmt::format("{}: checkpoint format_version {} (this build reads {} to {})",
                                file.filename(), version, kOldestReadableCheckpointFormat,
                                kCheckpointFormatVersion));
  return meta;
}

}  // namespace

void save_checkpoint(const std::string& path, const CheckpointSections& sections,
                     const CheckpointMeta& meta, bool checksums) {
  const h5::Checksum checksum = checksums ? h5::Checksum::fletcher32 : h5::Checksum::none;
  std::vector<uint8_t> image;
  {
    // Built in memory, then written with plain checked writes (replace_durably): a full disk
    // or a read-only directory is then an IoError, never a half-closed HDF5 file.
    h5::File file(path, h5::File::Mode::create_in_memory);
    file.set_attribute(kFormatVersionAttribute, kCheckpointFormatVersion);
    std::vector<std::string> int_keys, string_keys;
    for (const auto& [key, value] : meta.ints) {
      if (key == kFormatVersionAttribute) continue;
      file.set_attribute(key, value);
      int_keys.push_back(key);
    }
    for (const auto& [key, value] : meta.strings) {
      file.set_attribute(key, value);
      string_keys.push_back(key);
    }
    file.set_attribute("int_keys", int_keys);
    file.set_attribute("string_keys", string_keys);
    write_section(file.require_group("params"), sections.params, checksum);
    write_section(file.require_group("buffers"), sections.buffers, checksum);
    if (!sections.momentum.empty())
      write_section(file.require_group("optimizer/momentum"), sections.momentum, checksum);
    if (!sections.lookahead_params.empty() || !sections.lookahead_buffers.empty()) {
      write_section(file.require_group("lookahead/params"), sections.lookahead_params, checksum);
      write_section(file.require_group("lookahead/buffers"), sections.lookahead_buffers, checksum);
    }
    if (!sections.train_state_f32.empty() || !sections.train_state_f64.empty()) {
      h5::Group state = file.require_group("train_state");
      write_section(state, sections.train_state_f32, checksum);
      write_section(state, sections.train_state_f64, checksum);
    }
    image = file.image();
  }
  replace_durably(path, image, "checkpoint");
}

bool is_checkpoint_file(const h5::File& file) { return file.has("params"); }

CheckpointMeta load_checkpoint(const std::string& path, const CheckpointSections& sections) {
  h5::File file(path, h5::File::Mode::read);
  CheckpointMeta meta = read_meta(file);
  const std::pair<const char*, const std::vector<NamedBuffer>*> model_state[] = {
      {"params", &sections.params},
      {"buffers", &sections.buffers},
      {"optimizer/momentum", &sections.momentum},
      {"lookahead/params", &sections.lookahead_params},
      {"lookahead/buffers", &sections.lookahead_buffers}};
  for (const auto& [section, tensors] : model_state) {
    read_section(file, section, *tensors);
    check_state_values(file, section, *tensors);
  }
  // Only what a resume needs from it: the other world size's rows are left.
  read_section(file, "train_state", sections.train_state_f32, false);
  read_section(file, "train_state", sections.train_state_f64, false);
  return meta;
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  h5::File file(path, h5::File::Mode::read);
  return read_meta(file);
}

void publish_checkpoint_as(const std::string& target, const std::string& link) {
  // `link` keeps its permissions, as a replaced file does: `target`, a new name created with
  // the umask's, takes them first, and the link shares its inode.
  keep_permissions(link, target);
  const std::string tmp = tmp_path_for(link);
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(target, tmp, ec);
  if (ec) {
    fs::copy_file(target, tmp, fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError(fmt::format("{}: cannot copy checkpoint {}: {}", link, target, ec.message()));
    sync_path(tmp, false);
  }
  rename_into_place(tmp, link, "checkpoint " + target);
}

}  // namespace dp
