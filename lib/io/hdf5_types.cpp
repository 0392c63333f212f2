// In-memory types and dataspaces for the HDF5 wrapper, the element types it stores, and the
// read of variable-length strings (see hdf5_types.h).
#include "io/hdf5_types.h"

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

Handle string_type() {
  Handle t(DP_H5_CHECK(H5Tcopy(H5T_C_S1), "string type"), H5Tclose);
  DP_H5_CHECK(H5Tset_size(t.id(), H5T_VARIABLE), "string type");
  DP_H5_CHECK(H5Tset_cset(t.id(), H5T_CSET_UTF8), "string type");
  return t;
}

Handle scalar_space() { return Handle(DP_H5_CHECK(H5Screate(H5S_SCALAR), "dataspace"), H5Sclose); }

Handle simple_space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* max) {
  return Handle(DP_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                             max ? max->data() : nullptr),
                            "dataspace"),
                H5Sclose);
}

std::vector<std::string> read_string_values(hid_t obj, hid_t space, const std::string& where,
                                            bool is_attribute) {
  Handle mem_type = string_type();
  hssize_t n = DP_H5_CHECK(H5Sget_simple_extent_npoints(space), where);
  std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
  if (n == 0) return {};
  if (is_attribute)
    DP_H5_CHECK(H5Aread(obj, mem_type.id(), ptrs.data()), where);
  else
    DP_H5_CHECK(H5Dread(obj, mem_type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), where);
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  H5Dvlen_reclaim(mem_type.id(), space, H5P_DEFAULT, ptrs.data());
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
