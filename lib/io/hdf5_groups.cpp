// Object's tree navigation, shared by files and groups: whether a link exists, opening and
// creating groups, opening datasets (with or without a chunk cache), listing and unlinking
// children.
#include <algorithm>
#include <string>
#include <vector>

#include "io/hdf5.h"
#include "io/hdf5_types.h"

namespace dp::h5 {

namespace {

// The groups `name` passes through, outermost first: "a/b/c" -> "a", "a/b".
std::vector<std::string> parent_paths(const std::string& name) {
  std::vector<std::string> parents;
  for (size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1))
    if (slash > 0) parents.push_back(name.substr(0, slash));
  return parents;
}

}  // namespace

bool Object::has(const std::string& name) const {
  Lock lock(library_lock());
  // Each parent first, so "a/b" with a missing "a" is false rather than an error.
  std::vector<std::string> links = parent_paths(name);
  links.push_back(name);
  for (const std::string& link : links)
    if (H5Lexists(id(), link.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
  return true;
}

bool Object::has_attribute(const std::string& name) const {
  Lock lock(library_lock());
  return DP_H5_CHECK(H5Aexists(id(), name.c_str()), path_ + " attribute " + name) > 0;
}

Group Object::group(const std::string& name) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  if (!has(name)) throw DataError(fmt::format("{}: group not found", where));
  return Group(Handle(DP_H5_CHECK(H5Gopen2(id(), name.c_str(), H5P_DEFAULT), where), H5Gclose),
               where);
}

void create_missing_parents(hid_t loc, const std::string& name, const std::string& where) {
  const Handle gcpl = untimed_creation_plist(H5P_GROUP_CREATE, where);
  for (const std::string& parent : parent_paths(name)) {
    if (DP_H5_CHECK(H5Lexists(loc, parent.c_str(), H5P_DEFAULT), where) > 0) continue;
    Handle(DP_H5_WRITE_CHECK(H5Gcreate2(loc, parent.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT),
                             where),
           H5Gclose);
  }
}

Group Object::create_group(const std::string& name) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  create_missing_parents(id(), name, where);
  Handle gcpl = untimed_creation_plist(H5P_GROUP_CREATE, where);
  return Group(
      Handle(DP_H5_WRITE_CHECK(H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT),
                               where),
             H5Gclose),
      where);
}

Group Object::require_group(const std::string& name) const {
  return has(name) ? group(name) : create_group(name);
}

Dataset Object::dataset(const std::string& name) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  if (!has(name)) throw DataError(fmt::format("{}: dataset not found", where));
  return Dataset(Handle(DP_H5_CHECK(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), where), H5Dclose),
                 where);
}

Dataset Object::dataset(const std::string& name, size_t chunk_cache_bytes) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  if (!has(name)) throw DataError(fmt::format("{}: dataset not found", where));
  Handle dapl(DP_H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), where), H5Pclose);
  DP_H5_CHECK(H5Pset_chunk_cache(dapl.id(), H5D_CHUNK_CACHE_NSLOTS_DEFAULT, chunk_cache_bytes,
                                 H5D_CHUNK_CACHE_W0_DEFAULT),
              where);
  return Dataset(Handle(DP_H5_CHECK(H5Dopen2(id(), name.c_str(), dapl.id()), where), H5Dclose),
                 where);
}

std::vector<std::string> Object::children() const {
  Lock lock(library_lock());
  std::vector<std::string> names;
  auto visit = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  // Native order, then sorted: HDF5 1.10's name-ordered listing frees its link table twice
  // on a corrupted link heap (see file_verify.cpp).
  hsize_t index = 0;
  DP_H5_CHECK(H5Literate(id(), H5_INDEX_NAME, H5_ITER_NATIVE, &index, visit, &names), path_);
  std::sort(names.begin(), names.end());
  return names;
}

void Object::remove(const std::string& name) const {
  Lock lock(library_lock());
  DP_H5_WRITE_CHECK(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), path_ + "/" + name);
}

}  // namespace dp::h5
