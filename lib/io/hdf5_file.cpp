// File: opening an existing file (read-only or read-write), creating one on disk or in memory,
// flushing it, taking its bytes, closing it.
#include <filesystem>

#include "io/hdf5.h"
#include "io/hdf5_types.h"

namespace dp::h5 {

File::File(const std::string& filename, Mode mode) : filename_(filename) {
  Lock lock(library_lock());
  hid_t id;
  if (mode == Mode::create_in_memory) {
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    DP_H5_CHECK(fapl.id(), filename);
    DP_H5_CHECK(H5Pset_fapl_core(fapl.id(), 1 << 20, /*backing_store=*/false), filename);
    id = H5Fcreate(filename.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id());
    if (id < 0)
      throw IoError(
          fmt::format("{}: cannot create in-memory HDF5 file: {}", filename, last_error_message()));
  } else if (mode == Mode::create_truncate) {
    id = H5Fcreate(filename.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (id < 0)
      throw IoError(fmt::format("{}: cannot create HDF5 file: {}", filename, last_error_message()));
  } else {
    if (!std::filesystem::exists(filename))
      throw DataError(fmt::format("{}: file not found", filename));
    id = H5Fopen(filename.c_str(), mode == Mode::read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
    if (id < 0)
      throw DataError(fmt::format("{}: cannot open HDF5 file: {}", filename, last_error_message()));
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

}  // namespace dp::h5
