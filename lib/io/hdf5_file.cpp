// File: opening an existing file (read-only or read-write), creating one on disk or in memory,
// flushing it, taking its bytes, closing it.
#include <filesystem>

#include "core/input_file.h"
#include "io/hdf5.h"
#include "io/hdf5_types.h"

namespace dp::h5 {

namespace {

// File access properties for a new file: the 1.8 format, whose superblock and object headers
// carry checksums. Not the 1.10 format for the file itself: its superblock v3 marks a file
// open for writing, and after a crash (a killed run's metrics.h5) HDF5 1.10 refuses to open it
// until h5clear runs.
Handle checksummed_format_access(const std::string& filename) {
  Handle fapl(DP_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), filename), H5Pclose);
  DP_H5_CHECK(H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_V18, H5F_LIBVER_V18), filename);
  return fapl;
}

// Whether `bytes` open as an HDF5 file (in memory, read-only).
bool image_opens(const std::vector<uint8_t>& bytes) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.valid() || H5Pset_fapl_core(fapl.id(), 1 << 20, false) < 0 ||
      H5Pset_file_image(fapl.id(), const_cast<uint8_t*>(bytes.data()), bytes.size()) < 0)
    return false;
  Handle file(H5Fopen("image-check", H5F_ACC_RDONLY, fapl.id()), H5Fclose);
  H5Eclear2(H5E_DEFAULT);
  return file.valid();
}

// HDF5 1.10's H5Fget_file_image clears the superblock's "open for writing" flag (byte 11 of a
// version-2 superblock) in the image it returns but keeps the superblock checksum, which was
// computed with the flag set: the image would fail its own checksum on every open. Readers
// ignore that flag in a version-2 superblock, so the byte the checksum covers is put back.
// The image must then open (one in-memory open: two copies of the image); a library that
// recomputes the checksum passes with the byte left as it was.
void restore_superblock_flags(std::vector<uint8_t>& bytes, const std::string& filename) {
  constexpr size_t kVersion = 8, kFlags = 11, kWriteAccess = 0x01;
  if (bytes.size() > kFlags && bytes[kVersion] == 2 && bytes[kFlags] == 0) {
    bytes[kFlags] = kWriteAccess;
    if (image_opens(bytes)) return;
    bytes[kFlags] = 0;
  }
  if (image_opens(bytes)) return;
  // Version 3 (HDF5 1.10's newest format) enforces those flags and checksums them, so the
  // image cannot be mended here: say what the file is and how to carry on.
  if (bytes.size() > kVersion && bytes[kVersion] >= 3)
    throw DataError(fmt::format(
        "{}: written in HDF5's newest file format (superblock version {}, as h5py's "
        "libver='latest' writes), which dptrain cannot append to; copy it with h5py's default "
        "libver, or start a new run",
        filename, bytes[kVersion]));
  throw Error(ExitCode::internal,
              fmt::format("{}: the in-memory HDF5 file's image does not open", filename));
}

// Datasets created from now on in file `id` get the 1.10 format's chunk indexes (a fixed array,
// or an extensible array for an unlimited first dimension), which carry checksums; the 1.8
// format's version-1 B-tree has none, and a flipped key there hides a chunk (read back as fill
// values) without any error. The superblock keeps its version (see above), also in a file of
// an earlier dptrain opened to append.
void checksummed_chunk_indexes(hid_t id, const std::string& filename) {
  DP_H5_CHECK(H5Fset_libver_bounds(id, H5F_LIBVER_V110, H5F_LIBVER_V110), filename);
}

}  // namespace

File::File(const std::string& filename, Mode mode) : filename_(filename) {
  Lock lock(library_lock());
  hid_t id;
  if (mode == Mode::create_in_memory) {
    Handle fapl = checksummed_format_access(filename);
    DP_H5_CHECK(H5Pset_fapl_core(fapl.id(), 1 << 20, /*backing_store=*/false), filename);
    const Handle fcpl = untimed_creation_plist(H5P_FILE_CREATE, filename);  // the root group's
    id = DP_H5_WRITE_CHECK(H5Fcreate(filename.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()),
                           filename + ": cannot create in-memory HDF5 file");
  } else if (mode == Mode::create_truncate) {
    Handle fapl = checksummed_format_access(filename);
    const Handle fcpl = untimed_creation_plist(H5P_FILE_CREATE, filename);
    id = DP_H5_WRITE_CHECK(H5Fcreate(filename.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()),
                           filename + ": cannot create HDF5 file");
  } else {
    if (!std::filesystem::exists(filename))
      throw DataError(fmt::format("{}: file not found", filename));
    if (std::filesystem::is_directory(filename))
      throw DataError(fmt::format("{}: a folder, not an HDF5 file", filename));
    // HDF5 seeks in its file, and opening a named pipe would wait for a writer forever.
    if (!std::filesystem::is_regular_file(filename))
      throw DataError(
          fmt::format("{}: not a regular file (a pipe or a device), not an HDF5 file", filename));
    const unsigned access = mode == Mode::read ? H5F_ACC_RDONLY : H5F_ACC_RDWR;
    Handle fapl(DP_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), filename), H5Pclose);
    std::string open_name = filename;
    if (mode == Mode::open_in_memory) {
      // The file's bytes as the core driver's image: read only, never locked or written (the
      // writer replaces the file whole), so read access to it is all this needs. The driver
      // refuses an image under the name of a file that exists: it gets a name of its own.
      std::vector<uint8_t> bytes;
      read_whole_file(filename, bytes);
      if (bytes.empty()) throw DataError(fmt::format("{}: empty file (0 bytes)", filename));
      DP_H5_CHECK(H5Pset_fapl_core(fapl.id(), 1 << 20, /*backing_store=*/false), filename);
      DP_H5_CHECK(H5Pset_file_image(fapl.id(), const_cast<uint8_t*>(bytes.data()), bytes.size()),
                  filename);  // copied into the property list
      open_name = filename + ":in-memory";
    }
    id = DP_H5_CHECK(H5Fopen(open_name.c_str(), access, fapl.id()),
                     filename + ": cannot open HDF5 file");
  }
  handle_ = Handle(id, H5Fclose);
  path_ = filename + ":";
  writable_ = mode == Mode::create_truncate || mode == Mode::read_write;
  if (mode != Mode::read) checksummed_chunk_indexes(id, filename);
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
  restore_superblock_flags(bytes, filename_);
  return bytes;
}

void File::close() {
  Lock lock(library_lock());
  if (!handle_.valid()) return;
  // HDF5 closes a file whose groups or datasets are still open only when the last of them
  // closes, unchecked: a writer closes them first.
  DP_CHECK(!writable_ || H5Fget_obj_count(id(), H5F_OBJ_ALL) == 1,
           "{}: closed with {} of its objects open", filename_,
           H5Fget_obj_count(id(), H5F_OBJ_ALL) - 1);
  const hid_t id = handle_.release();  // after a failed close, abandoned (never closed twice)
  if (writable_)
    DP_H5_WRITE_CHECK(H5Fclose(id), filename_ + ": cannot close the written file");
  else
    H5Fclose(id);  // what was read was checked as it was read
}

}  // namespace dp::h5
