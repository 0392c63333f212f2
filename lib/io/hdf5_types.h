// Internal to the HDF5 wrapper (lib/io/hdf5_*.cpp), not part of its API: the lock guard every
// call takes, the in-memory types of our element types and of strings, dataspaces, and the
// read of variable-length string values shared by string attributes and string datasets.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "io/hdf5.h"

namespace dp::h5 {

using Lock = std::lock_guard<std::recursive_mutex>;

hid_t native_type(ElementType t);  // HDF5's predefined in-memory type (not to be closed)
Handle string_type();              // variable-length UTF-8 string
Handle scalar_space();
Handle simple_space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* max = nullptr);

// Every value of a string attribute (`is_attribute`) or string dataset `obj` of dataspace
// `space`; the library's buffers are reclaimed before returning.
std::vector<std::string> read_string_values(hid_t obj, hid_t space, const std::string& where,
                                            bool is_attribute);

}  // namespace dp::h5
