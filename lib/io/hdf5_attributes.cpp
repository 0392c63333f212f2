// Object's attributes: scalar and array attributes of strings, 64-bit integers and doubles,
// written (replacing one of the same name) and read back with their type checked.
#include "io/hdf5.h"
#include "io/hdf5_types.h"

namespace dp::h5 {
namespace {

void write_attribute(hid_t obj, const std::string& where, const std::string& name, hid_t type,
                     hid_t space, const void* data) {
  if (DP_H5_CHECK(H5Aexists(obj, name.c_str()), where) > 0)
    DP_H5_WRITE_CHECK(H5Adelete(obj, name.c_str()), where);
  Handle attr(DP_H5_WRITE_CHECK(
                  H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), where),
              H5Aclose);
  // An empty array attribute has nothing to write (and HDF5 rejects a null buffer).
  if (data != nullptr) DP_H5_WRITE_CHECK(H5Awrite(attr.id(), type, data), where);
}

Handle open_attribute(hid_t obj, const std::string& where, const std::string& name) {
  if (DP_H5_CHECK(H5Aexists(obj, name.c_str()), where) <= 0)
    throw DataError(fmt::format("{} attribute '{}' not found", where, name));
  return Handle(DP_H5_CHECK(H5Aopen(obj, name.c_str(), H5P_DEFAULT), where), H5Aclose);
}

// A numeric attribute read into one value: HDF5 would write every element of an array into
// it, and would truncate a float read as an integer. An integer may be stored as an enum (h5py
// writes a bool so).
Handle open_single_number(hid_t obj, const std::string& where, const std::string& name,
                          bool integer) {
  Handle attr = open_attribute(obj, where, name);
  Handle space(DP_H5_CHECK(H5Aget_space(attr.id()), where), H5Sclose);
  Handle type(DP_H5_CHECK(H5Aget_type(attr.id()), where), H5Tclose);
  const H5T_class_t cls = type_class(type.id(), where);
  const bool fits = cls == H5T_INTEGER || cls == H5T_ENUM || (!integer && cls == H5T_FLOAT);
  if (!fits || DP_H5_CHECK(H5Sget_simple_extent_npoints(space.id()), where) != 1)
    throw DataError(fmt::format("{} attribute '{}' is not a single {}", where, name,
                                integer ? "integer" : "number"));
  return attr;
}

}  // namespace

int64_t read_int_attribute(hid_t obj, const std::string& where, const std::string& name) {
  Lock lock(library_lock());
  Handle attr = open_single_number(obj, where, name, /*integer=*/true);
  int64_t value = 0;
  DP_H5_CHECK(H5Aread(attr.id(), H5T_NATIVE_INT64, &value), where + " attribute " + name);
  return value;
}

void Object::set_attribute(const std::string& name, const std::string& value) {
  Lock lock(library_lock());
  FixedStrings fixed = fixed_strings({value});
  Handle space = scalar_space();
  write_attribute(id(), path_, name, fixed.type.id(), space.id(), fixed.bytes.data());
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
  FixedStrings fixed = fixed_strings(values);
  Handle space = simple_space({values.size()});
  write_attribute(id(), path_, name, fixed.type.id(), space.id(),
                  values.empty() ? nullptr : fixed.bytes.data());
}

std::string Object::string_attribute(const std::string& name) const {
  auto values = strings_attribute(name);
  if (values.size() != 1)
    throw DataError(fmt::format("{} attribute '{}' is not a single string", path_, name));
  return values[0];
}

std::vector<std::string> Object::strings_attribute(const std::string& name) const {
  Lock lock(library_lock());
  Handle attr = open_attribute(id(), path_, name);
  Handle space(DP_H5_CHECK(H5Aget_space(attr.id()), path_), H5Sclose);
  Handle type(DP_H5_CHECK(H5Aget_type(attr.id()), path_), H5Tclose);
  if (type_class(type.id(), path_) != H5T_STRING)
    throw DataError(fmt::format("{} attribute '{}' is not a string", path_, name));
  return read_string_values(attr.id(), space.id(), path_ + " attribute " + name, true);
}

int64_t Object::int_attribute(const std::string& name) const {
  return read_int_attribute(id(), path_, name);
}

double Object::double_attribute(const std::string& name) const {
  Lock lock(library_lock());
  Handle attr = open_single_number(id(), path_, name, /*integer=*/false);
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

}  // namespace dp::h5
