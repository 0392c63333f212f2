#include "io/hdf5.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

namespace dp::h5 {

std::recursive_mutex& library_lock() {
  static std::recursive_mutex lock;
  return lock;
}

namespace {

using Lock = std::lock_guard<std::recursive_mutex>;

// Silence HDF5's automatic error printing once: we report errors ourselves, in one line.
// Before that first call, which starts the library: no HDF5 atexit handler. HDF5 1.10 cannot
// close a file whose writes failed (a full disk) and crashes when that handler tries again at
// exit; every file is closed by its RAII owner before exit anyway.
struct SilenceAutoPrint {
  SilenceAutoPrint() {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
};
const SilenceAutoPrint silence_auto_print;

herr_t collect_message(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n == 0 || out->empty()) *out = err->desc ? err->desc : "";
  // The outermost frame is the API call ("unable to open file"); the innermost names the
  // cause ("truncated file", "file signature not found"). Keep both.
  if (n > 0 && err->desc && out->find(err->desc) == std::string::npos) {
    *out += std::string(" (") + err->desc + ")";
  }
  return 0;
}

hid_t native_type(ElementType t) {
  switch (t) {
    case ElementType::f32: return H5T_NATIVE_FLOAT;
    case ElementType::f64: return H5T_NATIVE_DOUBLE;
    case ElementType::i32: return H5T_NATIVE_INT32;
    case ElementType::i64: return H5T_NATIVE_INT64;
    case ElementType::u8: return H5T_NATIVE_UINT8;
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

Handle simple_space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* max = nullptr) {
  return Handle(DP_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                             max ? max->data() : nullptr),
                            "dataspace"),
                H5Sclose);
}

}  // namespace

std::string last_error_message() {
  std::string message;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_message, &message);
  H5Eclear2(H5E_DEFAULT);
  // Some HDF5 messages embed a ctime() timestamp with a newline; errors must stay one line.
  std::replace(message.begin(), message.end(), '\n', ' ');
  return message.empty() ? "HDF5 error" : message;
}

template <> ElementType element_type_of<float>() { return ElementType::f32; }
template <> ElementType element_type_of<double>() { return ElementType::f64; }
template <> ElementType element_type_of<int32_t>() { return ElementType::i32; }
template <> ElementType element_type_of<int64_t>() { return ElementType::i64; }
template <> ElementType element_type_of<uint8_t>() { return ElementType::u8; }

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    if (valid() && close_) close_(id_);
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

Handle::~Handle() {
  if (valid() && close_) {
    Lock lock(library_lock());
    close_(id_);
  }
}

// ---------------------------------------------------------------- Object: links and groups

bool Object::has(const std::string& name) const {
  Lock lock(library_lock());
  // Check each path component so "a/b" with a missing "a" is false rather than an error.
  size_t pos = 0;
  while (true) {
    size_t slash = name.find('/', pos);
    std::string prefix = name.substr(0, slash);
    if (H5Lexists(id(), prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (slash == std::string::npos) return true;
    pos = slash + 1;
  }
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

Group Object::create_group(const std::string& name) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  Handle lcpl(DP_H5_CHECK(H5Pcreate(H5P_LINK_CREATE), where), H5Pclose);
  DP_H5_CHECK(H5Pset_create_intermediate_group(lcpl.id(), 1), where);
  return Group(Handle(DP_H5_CHECK(H5Gcreate2(id(), name.c_str(), lcpl.id(), H5P_DEFAULT,
                                             H5P_DEFAULT),
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
  hsize_t index = 0;
  DP_H5_CHECK(H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, &index, visit, &names), path_);
  return names;
}

void Object::remove(const std::string& name) const {
  Lock lock(library_lock());
  DP_H5_CHECK(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), path_ + "/" + name);
}

template <typename T>
Dataset Object::write(const std::string& name, const std::vector<hsize_t>& dims, const T* data,
                      hsize_t chunk_rows, int deflate_level) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  hid_t type = native_type(element_type_of<T>());
  if (has(name)) DP_H5_CHECK(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), where);
  std::vector<hsize_t> max = dims;
  Handle dcpl(DP_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), where), H5Pclose);
  if (chunk_rows > 0 || deflate_level > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = chunk_rows > 0 ? chunk_rows : std::max<hsize_t>(1, std::min<hsize_t>(dims[0], 1024));
    if (chunk_rows > 0) max[0] = H5S_UNLIMITED;
    DP_H5_CHECK(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), where);
    if (deflate_level > 0) DP_H5_CHECK(H5Pset_deflate(dcpl.id(), deflate_level), where);
  }
  Handle space = dims.empty() ? scalar_space() : simple_space(dims, &max);
  Handle lcpl(DP_H5_CHECK(H5Pcreate(H5P_LINK_CREATE), where), H5Pclose);
  DP_H5_CHECK(H5Pset_create_intermediate_group(lcpl.id(), 1), where);
  Handle ds(DP_H5_CHECK(H5Dcreate2(id(), name.c_str(), type, space.id(), lcpl.id(), dcpl.id(),
                                   H5P_DEFAULT),
                        where),
            H5Dclose);
  if (dp::numel(Shape(dims.begin(), dims.end())) > 0) {
    DP_H5_WRITE_CHECK(H5Dwrite(ds.id(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where);
  }
  return Dataset(std::move(ds), where);
}

Dataset Object::write_strings(const std::string& name, const std::vector<std::string>& values) const {
  Lock lock(library_lock());
  std::string where = path_ + "/" + name;
  if (has(name)) DP_H5_CHECK(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), where);
  Handle type = string_type();
  Handle space = simple_space({values.size()});
  Handle ds(DP_H5_CHECK(H5Dcreate2(id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT,
                                   H5P_DEFAULT, H5P_DEFAULT),
                        where),
            H5Dclose);
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (!ptrs.empty())
    DP_H5_WRITE_CHECK(H5Dwrite(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), where);
  return Dataset(std::move(ds), where);
}

// ---------------------------------------------------------------- attributes

namespace {

void write_attribute(hid_t obj, const std::string& where, const std::string& name, hid_t type,
                     hid_t space, const void* data) {
  if (DP_H5_CHECK(H5Aexists(obj, name.c_str()), where) > 0)
    DP_H5_CHECK(H5Adelete(obj, name.c_str()), where);
  Handle attr(DP_H5_CHECK(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                          where),
              H5Aclose);
  // An empty array attribute has nothing to write (and HDF5 rejects a null buffer).
  if (data != nullptr) DP_H5_WRITE_CHECK(H5Awrite(attr.id(), type, data), where);
}

Handle open_attribute(hid_t obj, const std::string& where, const std::string& name) {
  if (DP_H5_CHECK(H5Aexists(obj, name.c_str()), where) <= 0)
    throw DataError(fmt::format("{}: attribute '{}' not found", where, name));
  return Handle(DP_H5_CHECK(H5Aopen(obj, name.c_str(), H5P_DEFAULT), where), H5Aclose);
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

}  // namespace

void Object::set_attribute(const std::string& name, const std::string& value) {
  Lock lock(library_lock());
  Handle type = string_type();
  Handle space = scalar_space();
  const char* ptr = value.c_str();
  write_attribute(id(), path_, name, type.id(), space.id(), &ptr);
}

void Object::set_attribute(const std::string& name, int64_t value) {
  Lock lock(library_lock());
  Handle space = scalar_space();
  write_attribute(id(), path_, name, H5T_NATIVE_INT64, space.id(), &value);
}

void Object::set_attribute(const std::string& name, double value) {
  Lock lock(library_lock());
  Handle space = scalar_space();
  write_attribute(id(), path_, name, H5T_NATIVE_DOUBLE, space.id(), &value);
}

void Object::set_attribute(const std::string& name, const std::vector<double>& values) {
  Lock lock(library_lock());
  Handle space = simple_space({values.size()});
  write_attribute(id(), path_, name, H5T_NATIVE_DOUBLE, space.id(), values.data());
}

void Object::set_attribute(const std::string& name, const std::vector<std::string>& values) {
  Lock lock(library_lock());
  Handle type = string_type();
  Handle space = simple_space({values.size()});
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  write_attribute(id(), path_, name, type.id(), space.id(), ptrs.data());
}

std::string Object::string_attribute(const std::string& name) const {
  auto values = strings_attribute(name);
  if (values.size() != 1) throw DataError(fmt::format("{}: attribute '{}' is not a single string", path_, name));
  return values[0];
}

std::vector<std::string> Object::strings_attribute(const std::string& name) const {
  Lock lock(library_lock());
  Handle attr = open_attribute(id(), path_, name);
  Handle space(DP_H5_CHECK(H5Aget_space(attr.id()), path_), H5Sclose);
  Handle type(DP_H5_CHECK(H5Aget_type(attr.id()), path_), H5Tclose);
  if (H5Tget_class(type.id()) != H5T_STRING)
    throw DataError(fmt::format("{}: attribute '{}' is not a string", path_, name));
  return read_string_values(attr.id(), space.id(), path_ + " attribute " + name, true);
}

int64_t Object::int_attribute(const std::string& name) const {
  Lock lock(library_lock());
  Handle attr = open_attribute(id(), path_, name);
  int64_t value = 0;
  DP_H5_CHECK(H5Aread(attr.id(), H5T_NATIVE_INT64, &value), path_ + " attribute " + name);
  return value;
}

double Object::double_attribute(const std::string& name) const {
  Lock lock(library_lock());
  Handle attr = open_attribute(id(), path_, name);
  double value = 0;
  DP_H5_CHECK(H5Aread(attr.id(), H5T_NATIVE_DOUBLE, &value), path_ + " attribute " + name);
  return value;
}

std::vector<double> Object::doubles_attribute(const std::string& name) const {
  Lock lock(library_lock());
  Handle attr = open_attribute(id(), path_, name);
  Handle space(DP_H5_CHECK(H5Aget_space(attr.id()), path_), H5Sclose);
  std::vector<double> values(DP_H5_CHECK(H5Sget_simple_extent_npoints(space.id()), path_));
  if (values.empty()) return values;
  DP_H5_CHECK(H5Aread(attr.id(), H5T_NATIVE_DOUBLE, values.data()), path_ + " attribute " + name);
  return values;
}

// ---------------------------------------------------------------- Dataset

std::vector<hsize_t> Dataset::dims() const {
  Lock lock(library_lock());
  Handle space(DP_H5_CHECK(H5Dget_space(id()), path_), H5Sclose);
  int rank = DP_H5_CHECK(H5Sget_simple_extent_ndims(space.id()), path_);
  std::vector<hsize_t> dims(rank);
  DP_H5_CHECK(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), path_);
  return dims;
}

ElementType Dataset::element_type() const {
  Lock lock(library_lock());
  Handle type(DP_H5_CHECK(H5Dget_type(id()), path_), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.id());
  size_t size = H5Tget_size(type.id());
  if (cls == H5T_FLOAT) return size == 4 ? ElementType::f32 : ElementType::f64;
  if (cls == H5T_INTEGER) {
    bool is_signed = H5Tget_sign(type.id()) == H5T_SGN_2;
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
  Handle file_space(DP_H5_CHECK(H5Dget_space(id()), path_), H5Sclose);
  std::vector<hsize_t> start(d.size(), 0), extent = d;
  start[0] = first;
  extent[0] = count;
  DP_H5_CHECK(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr,
                                  extent.data(), nullptr),
              path_);
  Handle mem_space = simple_space(extent);
  DP_H5_CHECK(H5Dread(id(), native_type(element_type_of<T>()), mem_space.id(), file_space.id(),
                      H5P_DEFAULT, out),
              path_);
}

template <typename T>
void Dataset::append_rows(hsize_t count, const T* data) {
  Lock lock(library_lock());
  auto d = dims();
  std::vector<hsize_t> new_dims = d;
  new_dims[0] += count;
  DP_H5_WRITE_CHECK(H5Dset_extent(id(), new_dims.data()), path_);
  Handle file_space(DP_H5_CHECK(H5Dget_space(id()), path_), H5Sclose);
  std::vector<hsize_t> start(d.size(), 0), extent = d;
  start[0] = d[0];
  extent[0] = count;
  DP_H5_CHECK(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr,
                                  extent.data(), nullptr),
              path_);
  Handle mem_space = simple_space(extent);
  DP_H5_WRITE_CHECK(H5Dwrite(id(), native_type(element_type_of<T>()), mem_space.id(), file_space.id(),
                       H5P_DEFAULT, data),
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
  if (H5Tget_class(type.id()) != H5T_STRING)
    throw DataError(fmt::format("{}: is not a string dataset", path_));
  Handle space(DP_H5_CHECK(H5Dget_space(id()), path_), H5Sclose);
  return read_string_values(id(), space.id(), path_, false);
}

// ---------------------------------------------------------------- File

File::File(const std::string& filename, Mode mode) : filename_(filename) {
  Lock lock(library_lock());
  hid_t id;
  if (mode == Mode::create_in_memory) {
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    DP_H5_CHECK(fapl.id(), filename);
    DP_H5_CHECK(H5Pset_fapl_core(fapl.id(), 1 << 20, /*backing_store=*/false), filename);
    id = H5Fcreate(filename.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id());
    if (id < 0)
      throw IoError(fmt::format("{}: cannot create in-memory HDF5 file: {}", filename,
                                last_error_message()));
  } else if (mode == Mode::create_truncate) {
    id = H5Fcreate(filename.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (id < 0) throw IoError(fmt::format("{}: cannot create HDF5 file: {}", filename, last_error_message()));
  } else {
    if (!std::filesystem::exists(filename)) throw DataError(fmt::format("{}: file not found", filename));
    id = H5Fopen(filename.c_str(), mode == Mode::read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
    if (id < 0) throw DataError(fmt::format("{}: cannot open HDF5 file: {}", filename, last_error_message()));
  }
  handle_ = Handle(id, H5Fclose);
  path_ = filename + ":";
}

void File::flush() {
  Lock lock(library_lock());
  DP_H5_WRITE_CHECK(H5Fflush(id(), H5F_SCOPE_GLOBAL), filename_);
}

std::vector<uint8_t> File::image() {
  Lock lock(library_lock());
  DP_H5_WRITE_CHECK(H5Fflush(id(), H5F_SCOPE_GLOBAL), filename_);
  const ssize_t size = DP_H5_CHECK(H5Fget_file_image(id(), nullptr, 0), filename_);
  std::vector<uint8_t> bytes(size);
  DP_H5_CHECK(H5Fget_file_image(id(), bytes.data(), bytes.size()), filename_);
  return bytes;
}

void File::close() {
  Lock lock(library_lock());
  handle_ = Handle();
}

// Explicit instantiations for the element types we store.
#define DP_H5_INSTANTIATE(T)                                                                  \
  template Dataset Object::write<T>(const std::string&, const std::vector<hsize_t>&, const T*, \
                                    hsize_t, int) const;                                      \
  template void Dataset::read<T>(std::vector<T>&) const;                                      \
  template void Dataset::read<T>(T*, size_t) const;                                           \
  template void Dataset::read_rows<T>(hsize_t, hsize_t, T*) const;                            \
  template void Dataset::append_rows<T>(hsize_t, const T*);
DP_H5_INSTANTIATE(float)
DP_H5_INSTANTIATE(double)
DP_H5_INSTANTIATE(int32_t)
DP_H5_INSTANTIATE(int64_t)
DP_H5_INSTANTIATE(uint8_t)
#undef DP_H5_INSTANTIATE

}  // namespace dp::h5
