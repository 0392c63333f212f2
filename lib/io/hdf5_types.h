// Internal to the HDF5 wrapper (lib/io/hdf5_*.cpp), not part of its API: the lock guard every
// call takes, the in-memory types of our element types and of strings, dataspaces, row
// selections, and the write and read of string values shared by string attributes and string
// datasets.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "io/hdf5.h"

namespace dp::h5 {

// The library lock, held for a wrapper call. Taking it also switches off HDF5's automatic
// error printing on the calling thread, once: a thread-safe HDF5 keeps that setting per thread,
// and a loader thread's read error would otherwise print HDF5's whole error stack before our
// one line.
class Lock {
 public:
  explicit Lock(std::recursive_mutex& mutex) : guard_(mutex) { silence_error_printing(); }

 private:
  std::lock_guard<std::recursive_mutex> guard_;
};

hid_t native_type(ElementType t);  // HDF5's predefined in-memory type (not to be closed)

// A datatype's class, size in bytes, and character set (strings); a DataError naming `where`
// when HDF5 cannot tell (the calls return H5T_NO_CLASS, 0 and H5T_CSET_ERROR then).
H5T_class_t type_class(hid_t type, const std::string& where);
size_t type_size(hid_t type, const std::string& where);
H5T_cset_t type_cset(hid_t type, const std::string& where);
Handle scalar_space();
// A creation property list of class `cls` (H5P_DATASET_CREATE, H5P_GROUP_CREATE, or
// H5P_FILE_CREATE for the root group) whose objects carry no timestamps, so that the same
// contents written twice are the same bytes (a packed dataset's checksum then names its
// contents).
Handle untimed_creation_plist(hid_t cls, const std::string& where);
// Creates the groups missing along `name`'s path below `loc` ("a/b" of "a/b/c"), untimed too:
// HDF5's own creation of intermediate groups would give them the default, timestamped, list.
void create_missing_parents(hid_t loc, const std::string& name, const std::string& where);
Handle simple_space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* max = nullptr);

// Rows [first, first + count) of a dataset of dimensions `dims` (rows along the first): its
// file dataspace with them selected, and a memory dataspace of just those rows, the pair an
// H5Dread or H5Dwrite of the rows takes. `path` names the dataset in errors.
struct RowSelection {
  Handle file_space, mem_space;
};
RowSelection select_rows(hid_t dataset, const std::vector<hsize_t>& dims, hsize_t first,
                         hsize_t count, const std::string& path);

// Strings as dptrain writes them: fixed-length UTF-8, NUL-padded to the longest value (at
// least one byte). Not variable-length: those live in HDF5's global heap, which has no
// checksum, and a flipped byte in a heap collection's header crashes HDF5 1.10's reader;
// fixed-length values sit in the checksummed object header (attributes) or in the dataset.
struct FixedStrings {
  Handle type;
  std::vector<char> bytes;  // values.size() x H5Tget_size(type)
};
FixedStrings fixed_strings(const std::vector<std::string>& values);

// Every value of a string attribute (`is_attribute`) or string dataset `obj` of dataspace
// `space`: fixed-length (as written now; trailing NULs dropped) or variable-length (as earlier
// versions wrote them; the library's buffers are reclaimed before returning).
std::vector<std::string> read_string_values(hid_t obj, hid_t space, const std::string& where,
                                            bool is_attribute);

// The integer attribute `name` of `obj`; a DataError naming `where` and the attribute when it
// is missing or not a single integer (an array's elements would overrun the one value read).
int64_t read_int_attribute(hid_t obj, const std::string& where, const std::string& name);

}  // namespace dp::h5
