// Internal to the HDF5 wrapper (lib/io/hdf5_*.cpp): the pieces of dataset checksums that the
// writers and readers in hdf5_dataset_io.cpp share with hdf5_checksums.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/hdf5.h"

namespace dp::h5 {

// Adds the Fletcher-32 filter to dataset creation properties `dcpl`, first giving a dataset of
// shape `dims` a chunked layout unless `chunked_already`.
void add_checksum_filter(hid_t dcpl, const std::vector<hsize_t>& dims, hsize_t element_bytes,
                         bool chunked_already, const std::string& where);

// FNV-1a-64 over each string's length and bytes, in order.
uint64_t strings_digest(const std::vector<std::string>& values);

// Throws DataError naming `ds` when dataset `id` carries a digest that `values` do not match
// (a dataset written without one passes).
void check_strings_digest(const Dataset& ds, hid_t id, const std::vector<std::string>& values);

}  // namespace dp::h5
