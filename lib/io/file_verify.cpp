#include "io/file_verify.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/hdf5.h"
#include "io/hdf5_types.h"

namespace dp {
namespace {

struct ObjectEntry {
  std::string name;  // "/params/conv1.weight", "/" for the root group
  H5O_type_t type;
};

// Every object of the file, by name, root first (visiting reads every object header). The
// visit goes in the links' native order and the names are sorted after: in increasing name
// order HDF5 (1.10) first copies a group's links into a table, and a corrupted link heap makes
// it free that table twice, which aborts the process where the error should come back.
std::vector<ObjectEntry> list_objects(const h5::File& file) {
  std::vector<ObjectEntry> objects;
  auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
    std::string path("/");
    if (std::strcmp(name, ".") != 0) path.append(name);
    static_cast<std::vector<ObjectEntry>*>(data)->push_back({std::move(path), info->type});
    return 0;
  };
  h5::Lock lock(h5::library_lock());
  DP_H5_CHECK(H5Ovisit(file.id(), H5_INDEX_NAME, H5_ITER_NATIVE, visit, &objects), file.filename());
  std::sort(objects.begin(), objects.end(),
            [](const ObjectEntry& a, const ObjectEntry& b) { return a.name < b.name; });
  return objects;
}

// Reads every attribute value of object `name`: strings as strings (variable-length ones, in
// files of earlier versions, through the global heap), the others as stored. Returns how many.
hsize_t read_attributes(const h5::File& file, const std::string& name) {
  h5::Lock lock(h5::library_lock());
  const std::string where = file.path() + name;
  h5::Handle object(DP_H5_CHECK(H5Oopen(file.id(), name.c_str(), H5P_DEFAULT), where), H5Oclose);
  H5O_info_t info;
  DP_H5_CHECK(H5Oget_info2(object.id(), &info, H5O_INFO_NUM_ATTRS), where);
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    h5::Handle attr(DP_H5_CHECK(H5Aopen_by_idx(object.id(), ".", H5_INDEX_NAME, H5_ITER_INC, i,
                                               H5P_DEFAULT, H5P_DEFAULT),
                                where),
                    H5Aclose);
    h5::Handle type(DP_H5_CHECK(H5Aget_type(attr.id()), where), H5Tclose);
    h5::Handle space(DP_H5_CHECK(H5Aget_space(attr.id()), where), H5Sclose);
    if (h5::type_class(type.id(), where) == H5T_STRING) {
      h5::read_string_values(attr.id(), space.id(), where, /*is_attribute=*/true);
      continue;
    }
    // H5Aread writes every element in the file's own type.
    const auto n =
        static_cast<size_t>(DP_H5_CHECK(H5Sget_simple_extent_npoints(space.id()), where));
    std::vector<uint8_t> bytes(n * h5::type_size(type.id(), where) + 1);
    DP_H5_CHECK(H5Aread(attr.id(), type.id(), bytes.data()), where);
  }
  return info.num_attrs;
}

}  // namespace

std::string unverified_parts(const FileVerification& v) {
  std::vector<std::string> parts;
  if (v.checksummed < v.datasets)
    parts.push_back(
        fmt::format("{} of {} datasets carry no checksum", v.datasets - v.checksummed, v.datasets));
  if (!v.metadata_checksummed())
    parts.push_back(
        fmt::format("its metadata (superblock version {}: object headers, "
                    "attributes) carries no checksums",
                    v.superblock_version));
  return fmt::format("{}", fmt::join(parts, "; "));
}

FileVerification verify_file(const std::string& path) {
  FileVerification result;
  try {
    h5::File file(path, h5::File::Mode::read);
    {
      h5::Lock lock(h5::library_lock());
      H5F_info2_t info;
      DP_H5_CHECK(H5Fget_info2(file.id(), &info), path);
      result.superblock_version = info.super.version;
    }
    hsize_t attributes = 0;
    for (const auto& object : list_objects(file)) {
      result.failed_object = object.name;
      result.failed_at_dataset = object.type == H5O_TYPE_DATASET;
      attributes += read_attributes(file, object.name);
      if (object.type != H5O_TYPE_DATASET) continue;
      h5::Dataset dataset = file.dataset(object.name.substr(1));
      dataset.verify();
      ++result.datasets;
      if (dataset.checksummed()) ++result.checksummed;
    }
    result.failed_object.clear();
    result.failed_at_dataset = false;
    // Every file dptrain writes holds some: an empty one is a write cut short before HDF5
    // flushed its metadata (a killed pack's .tmp), not a file to call verified.
    if (result.datasets == 0 && attributes == 0)
      throw DataError(
          fmt::format("{}: holds no datasets and no attributes (a write cut short, "
                      "or not a file dptrain wrote)",
                      path));
    result.ok = true;
  } catch (const Error& e) {
    result.problem = e.what();
  }
  return result;
}

}  // namespace dp
