// Dataset contents: Object::write / write_strings create (or replace) a dataset with its
// data, and Dataset reads it whole or by rows, appends rows and resizes; the element types we
// store are instantiated at the end.
#include <algorithm>

#include "io/hdf5.h"
#include "io/hdf5_checksums.h"
#include "io/hdf5_types.h"

namespace dp::h5 {

template <typename T>
Dataset Object::write(const std::string& name, const std::vector<hsize_t>& dims, const T* data,
                      hsize_t chunk_rows, int deflate_level, Checksum checksum) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  hid_t type = native_type(element_type_of<T>());
  if (has(name)) DP_H5_WRITE_CHECK(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), where);
  std::vector<hsize_t> max = dims;
  Handle dcpl = untimed_creation_plist(H5P_DATASET_CREATE, where);
  const bool chunked = chunk_rows > 0 || deflate_level > 0;
  if (chunked) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = chunk_rows > 0 ? chunk_rows : std::max<hsize_t>(1, std::min<hsize_t>(dims[0], 1024));
    if (chunk_rows > 0) max[0] = H5S_UNLIMITED;
    DP_H5_CHECK(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), where);
    if (deflate_level > 0) DP_H5_CHECK(H5Pset_deflate(dcpl.id(), deflate_level), where);
  }
  // After deflate: the checksum covers the bytes as stored, so it is checked before inflating.
  if (checksum == Checksum::fletcher32 && !dims.empty())
    add_checksum_filter(dcpl.id(), dims, sizeof(T), chunked, where);
  Handle space = dims.empty() ? scalar_space() : simple_space(dims, &max);
  create_missing_parents(id(), name, where);
  Handle ds(DP_H5_WRITE_CHECK(H5Dcreate2(id(), name.c_str(), type, space.id(), H5P_DEFAULT,
                                         dcpl.id(), H5P_DEFAULT),
                              where),
            H5Dclose);
  if (dp::numel(Shape(dims.begin(), dims.end())) > 0) {
    DP_H5_WRITE_CHECK(H5Dwrite(ds.id(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where);
  }
  return Dataset(std::move(ds), where);
}

Dataset Object::write_strings(const std::string& name, const std::vector<std::string>& values,
                              Checksum checksum) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  if (has(name)) DP_H5_WRITE_CHECK(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), where);
  FixedStrings fixed = fixed_strings(values);
  Handle space = simple_space({values.size()});
  Handle dcpl = untimed_creation_plist(H5P_DATASET_CREATE, where);
  Handle ds(DP_H5_WRITE_CHECK(H5Dcreate2(id(), name.c_str(), fixed.type.id(), space.id(),
                                         H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
                              where),
            H5Dclose);
  if (!values.empty())
    DP_H5_WRITE_CHECK(H5Dwrite(ds.id(), fixed.type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT,
                               fixed.bytes.data()),
                      where);
  if (checksum == Checksum::fletcher32) {
    const auto digest = static_cast<int64_t>(strings_digest(values));
    Handle attr_space = scalar_space();
    Handle attr(DP_H5_WRITE_CHECK(H5Acreate2(ds.id(), kStringDigestAttribute, H5T_NATIVE_INT64,
                                             attr_space.id(), H5P_DEFAULT, H5P_DEFAULT),
                                  where),
                H5Aclose);
    DP_H5_WRITE_CHECK(H5Awrite(attr.id(), H5T_NATIVE_INT64, &digest), where);
  }
  return Dataset(std::move(ds), where);
}

std::vector<hsize_t> Dataset::dims() const {
  Lock lock(library_lock());
  Handle space(DP_H5_CHECK(H5Dget_space(id()), path_), H5Sclose);
  int rank = DP_H5_CHECK(H5Sget_simple_extent_ndims(space.id()), path_);
  std::vector<hsize_t> dims(rank);
  DP_H5_CHECK(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), path_);
  return dims;
}

hsize_t Dataset::filtered_chunk_rows() const {
  Lock lock(library_lock());
  Handle dcpl(DP_H5_CHECK(H5Dget_create_plist(id()), path_), H5Pclose);
  if (DP_H5_CHECK(H5Pget_layout(dcpl.id()), path_) != H5D_CHUNKED) return 0;
  if (DP_H5_CHECK(H5Pget_nfilters(dcpl.id()), path_) == 0) return 0;
  const int rank = DP_H5_CHECK(H5Pget_chunk(dcpl.id(), 0, nullptr), path_);
  if (rank < 1) return 0;
  std::vector<hsize_t> chunk(rank);
  DP_H5_CHECK(H5Pget_chunk(dcpl.id(), rank, chunk.data()), path_);
  return chunk[0];
}

std::string Dataset::missing_filter() const {
  Lock lock(library_lock());
  Handle dcpl(DP_H5_CHECK(H5Dget_create_plist(id()), path_), H5Pclose);
  const int filters = DP_H5_CHECK(H5Pget_nfilters(dcpl.id()), path_);
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0, config = 0;
    size_t n_values = 0;
    char name[64] = "";
    const H5Z_filter_t filter =
        DP_H5_CHECK(H5Pget_filter2(dcpl.id(), static_cast<unsigned>(i), &flags, &n_values, nullptr,
                                   sizeof name, name, &config),
                    path_);
    if (DP_H5_CHECK(H5Zfilter_avail(filter), path_) <= 0)
      return fmt::format("{} (id {})", name[0] ? name : "unnamed", static_cast<int>(filter));
  }
  return "";
}

ElementType Dataset::element_type() const {
  Lock lock(library_lock());
  Handle type(DP_H5_CHECK(H5Dget_type(id()), path_), H5Tclose);
  const H5T_class_t cls = type_class(type.id(), path_);
  const size_t size = type_size(type.id(), path_);
  if (cls == H5T_FLOAT && size == 4) return ElementType::f32;
  if (cls == H5T_FLOAT && size == 8) return ElementType::f64;
  if (cls == H5T_INTEGER) {
    const bool is_signed = DP_H5_CHECK(H5Tget_sign(type.id()), path_) == H5T_SGN_2;
    if (size == 1 && !is_signed) return ElementType::u8;
    if (size == 4 && is_signed) return ElementType::i32;
    if (size == 8 && is_signed) return ElementType::i64;
  }
  throw DataError(fmt::format("{}: unsupported element type (class {}, {} bytes)", path_,
                              static_cast<int>(cls), size));
}

template <typename T>
void Dataset::read(std::vector<T>& out) const {
  auto d = dims();
  out.resize(dp::numel(Shape(d.begin(), d.end())));
  read(out.data(), out.size());
}

template <typename T>
void Dataset::read(T* out, size_t count) const {
  Lock lock(library_lock());
  auto d = dims();
  size_t n = dp::numel(Shape(d.begin(), d.end()));
  if (n != count)
    throw DataError(fmt::format("{}: holds {} elements, expected {}", path_, n, count));
  if (n == 0) return;
  DP_H5_CHECK(H5Dread(id(), native_type(element_type_of<T>()), H5S_ALL, H5S_ALL, H5P_DEFAULT, out),
              path_);
}

template <typename T>
void Dataset::read_rows(hsize_t first, hsize_t count, T* out) const {
  Lock lock(library_lock());
  auto d = dims();
  if (d.empty() || first + count > d[0])
    throw DataError(fmt::format("{}: rows [{}, {}) out of range", path_, first, first + count));
  if (count == 0) return;
  const RowSelection rows = select_rows(id(), d, first, count, path_);
  DP_H5_CHECK(H5Dread(id(), native_type(element_type_of<T>()), rows.mem_space.id(),
                      rows.file_space.id(), H5P_DEFAULT, out),
              path_);
}

template <typename T>
void Dataset::append_rows(hsize_t count, const T* data) {
  Lock lock(library_lock());
  auto d = dims();
  std::vector<hsize_t> new_dims = d;
  new_dims[0] += count;
  DP_H5_WRITE_CHECK(H5Dset_extent(id(), new_dims.data()), path_);
  const RowSelection rows = select_rows(id(), new_dims, d[0], count, path_);
  DP_H5_WRITE_CHECK(H5Dwrite(id(), native_type(element_type_of<T>()), rows.mem_space.id(),
                             rows.file_space.id(), H5P_DEFAULT, data),
                    path_);
}

void Dataset::resize_rows(hsize_t rows) {
  Lock lock(library_lock());
  auto d = dims();
  DP_CHECK(!d.empty(), "{}: cannot resize a scalar dataset", path_);
  d[0] = rows;
  DP_H5_WRITE_CHECK(H5Dset_extent(id(), d.data()), path_);
}

std::vector<std::string> Dataset::read_strings() const {
  Lock lock(library_lock());
  Handle type(DP_H5_CHECK(H5Dget_type(id()), path_), H5Tclose);
  if (type_class(type.id(), path_) != H5T_STRING)
    throw DataError(fmt::format("{}: is not a string dataset", path_));
  Handle space(DP_H5_CHECK(H5Dget_space(id()), path_), H5Sclose);
  std::vector<std::string> values = read_string_values(id(), space.id(), path_, false);
  check_strings_digest(*this, id(), values);
  return values;
}

// Explicit instantiations for the element types we store.
#define DP_H5_INSTANTIATE(T)                                                                   \
  template Dataset Object::write<T>(const std::string&, const std::vector<hsize_t>&, const T*, \
                                    hsize_t, int, Checksum) const;                             \
  template void Dataset::read<T>(std::vector<T>&) const;                                       \
  template void Dataset::read<T>(T*, size_t) const;                                            \
  template void Dataset::read_rows<T>(hsize_t, hsize_t, T*) const;                             \
  template void Dataset::append_rows<T>(hsize_t, const T*);
DP_H5_INSTANTIATE(float)
DP_H5_INSTANTIATE(double)
DP_H5_INSTANTIATE(int32_t)
DP_H5_INSTANTIATE(int64_t)
DP_H5_INSTANTIATE(uint8_t)
#undef DP_H5_INSTANTIATE

}  // namespace dp::h5
