// In-memory types and dataspaces for the HDF5 wrapper, the element types it stores, and the
// write and read of strings (see hdf5_types.h).
#include "io/hdf5_types.h"

#include <algorithm>
#include <cstring>

namespace dp::h5 {

hid_t native_type(ElementType t) {
  switch (t) {
    case ElementType::f32:
      return H5T_NATIVE_FLOAT;
    case ElementType::f64:
      return H5T_NATIVE_DOUBLE;
    case ElementType::i32:
      return H5T_NATIVE_INT32;
    case ElementType::i64:
      return H5T_NATIVE_INT64;
    case ElementType::u8:
      return H5T_NATIVE_UINT8;
  }
  return H5I_INVALID_HID;
}

H5T_class_t type_class(hid_t type, const std::string& where) {
  return DP_H5_CHECK(H5Tget_class(type), where);
}

size_t type_size(hid_t type, const std::string& where) {
  const size_t size = H5Tget_size(type);
  if (size == 0) throw DataError(fmt::format("{}: datatype size: {}", where, last_error_message()));
  return size;
}

H5T_cset_t type_cset(hid_t type, const std::string& where) {
  return DP_H5_CHECK(H5Tget_cset(type), where);
}

namespace {

// Hands the library's variable-length buffers back, on every path out of the read.
struct VlenReclaim {
  hid_t mem_type, space;
  std::vector<char*>& ptrs;
  ~VlenReclaim() { H5Dvlen_reclaim(mem_type, space, H5P_DEFAULT, ptrs.data()); }
};

Handle string_type(size_t size, H5T_cset_t cset = H5T_CSET_UTF8) {
  Handle t(DP_H5_CHECK(H5Tcopy(H5T_C_S1), "string type"), H5Tclose);
  DP_H5_CHECK(H5Tset_size(t.id(), size), "string type");
  DP_H5_CHECK(H5Tset_cset(t.id(), cset), "string type");
  if (size != H5T_VARIABLE) DP_H5_CHECK(H5Tset_strpad(t.id(), H5T_STR_NULLPAD), "string type");
  return t;
}

// HDF5 converts no string between character sets: the in-memory type takes the file's (ASCII
// in a file another tool wrote).
std::vector<std::string> read_variable_length(hid_t obj, hid_t space, size_t n, H5T_cset_t cset,
                                              const std::string& where, bool is_attribute) {
  Handle mem_type = string_type(H5T_VARIABLE, cset);
  std::vector<char*> ptrs(n, nullptr);
  // Reclaimed after a failed read too (the pointers it did not fill stay null).
  VlenReclaim reclaim{mem_type.id(), space, ptrs};
  if (is_attribute)
    DP_H5_CHECK(H5Aread(obj, mem_type.id(), ptrs.data()), where);
  else
    DP_H5_CHECK(H5Dread(obj, mem_type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), where);
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  return out;
}

}  // namespace

FixedStrings fixed_strings(const std::vector<std::string>& values) {
  size_t size = 1;  // HDF5 refuses a zero-size string type
  for (const auto& v : values) size = std::max(size, v.size());
  FixedStrings out{string_type(size), std::vector<char>(values.size() * size, '\0')};
  for (size_t i = 0; i < values.size(); ++i)
    std::copy(values[i].begin(), values[i].end(), out.bytes.begin() + i * size);
  return out;
}

Handle scalar_space() { return Handle(DP_H5_CHECK(H5Screate(H5S_SCALAR), "dataspace"), H5Sclose); }

Handle untimed_creation_plist(hid_t cls, const std::string& where) {
  Handle plist(DP_H5_CHECK(H5Pcreate(cls), where), H5Pclose);
  DP_H5_CHECK(H5Pset_obj_track_times(plist.id(), 0), where);
  return plist;
}

Handle simple_space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* max) {
  return Handle(DP_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                             max ? max->data() : nullptr),
                            "dataspace"),
                H5Sclose);
}

RowSelection select_rows(hid_t dataset, const std::vector<hsize_t>& dims, hsize_t first,
                         hsize_t count, const std::string& path) {
  Handle file_space(DP_H5_CHECK(H5Dget_space(dataset), path), H5Sclose);
  std::vector<hsize_t> start(dims.size(), 0), extent = dims;
  start[0] = first;
  extent[0] = count;
  DP_H5_CHECK(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr,
                                  extent.data(), nullptr),
              path);
  return {std::move(file_space), simple_space(extent)};
}

std::vector<std::string> read_string_values(hid_t obj, hid_t space, const std::string& where,
                                            bool is_attribute) {
  const auto n = static_cast<size_t>(DP_H5_CHECK(H5Sget_simple_extent_npoints(space), where));
  if (n == 0) return {};
  Handle file_type(DP_H5_CHECK(is_attribute ? H5Aget_type(obj) : H5Dget_type(obj), where),
                   H5Tclose);
  const H5T_cset_t cset = type_cset(file_type.id(), where);
  if (DP_H5_CHECK(H5Tis_variable_str(file_type.id()), where) > 0)
    return read_variable_length(obj, space, n, cset, where, is_attribute);
  const size_t size = type_size(file_type.id(), where);
  Handle mem_type = string_type(size, cset);
  std::vector<char> bytes(n * size);
  if (is_attribute)
    DP_H5_CHECK(H5Aread(obj, mem_type.id(), bytes.data()), where);
  else
    DP_H5_CHECK(H5Dread(obj, mem_type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), where);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    const char* value = bytes.data() + i * size;
    out.emplace_back(value, strnlen(value, size));
  }
  return out;
}

template <>
ElementType element_type_of<float>() {
  return ElementType::f32;
}
template <>
ElementType element_type_of<double>() {
  return ElementType::f64;
}
template <>
ElementType element_type_of<int32_t>() {
  return ElementType::i32;
}
template <>
ElementType element_type_of<int64_t>() {
  return ElementType::i64;
}
template <>
ElementType element_type_of<uint8_t>() {
  return ElementType::u8;
}

}  // namespace dp::h5
