// RAII wrapper over the HDF5 C API: every hid_t is owned by exactly one object and closed
// by its destructor; every call is checked, with HDF5's own error stack message and the file
// name: by DP_H5_CHECK (DataError: reading, and setting up calls) or DP_H5_WRITE_CHECK
// (IoError: a call that changes a file, which a full disk fails). The library build may not
// be thread-safe, so every wrapper call holds one process-wide lock (the prefetch thread reads
// while rank 0 writes). Implemented one role per file: hdf5_library.cpp (the lock, error
// messages), hdf5_handle.cpp, hdf5_types.cpp (types, dataspaces, strings), hdf5_groups.cpp,
// hdf5_attributes.cpp, hdf5_dataset_io.cpp (dataset writes and reads), hdf5_file.cpp,
// hdf5_checksums.cpp.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace dp::h5 {

std::recursive_mutex& library_lock();
// Switches off HDF5's automatic error printing on the calling thread, once per thread (errors
// are reported as one line instead); the library lock held.
void silence_error_printing();
// HDF5's current error stack as one line: the outermost frame ("unable to open file"), then the
// innermost causes in parentheses ("truncated file", ...). When the
// stack reports a checksum mismatch (Fletcher-32 on a chunk, or HDF5's own checksum on a
// metadata block), the message says the file is corrupted and what to do.
std::string last_error_message();
// True for a message from last_error_message() that reports a checksum mismatch.
bool is_corruption_message(const std::string& message);
// Logs, once per file and process, that `filename` has no checksums (an earlier dptrain's
// file, or another program's): what it holds is read but cannot be verified.
void note_unverified_once(const std::string& filename);

}  // namespace dp::h5

// Checks an HDF5 return value (negative = failure) and throws `ErrorType` naming `what` with
// HDF5's error stack: DataError where reading (the input's fault), IoError where writing (the
// output's: full disk, read-only file system; exit code 6), through the two names below.
#define DP_H5_CHECK_THROWING(ErrorType, expr, what)                                     \
  ([&]() {                                                                              \
    auto dp_h5_status_ = (expr);                                                        \
    if (dp_h5_status_ < 0)                                                              \
      throw ErrorType(::fmt::format("{}: {}", (what), ::dp::h5::last_error_message())); \
    return dp_h5_status_;                                                               \
  }())
#define DP_H5_CHECK(expr, what) DP_H5_CHECK_THROWING(::dp::DataError, expr, what)
#define DP_H5_WRITE_CHECK(expr, what) DP_H5_CHECK_THROWING(::dp::IoError, expr, what)

namespace dp::h5 {

// An owned hid_t with the matching close function.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // The id, no longer owned: for a caller that closes it and checks how that went.
  hid_t release() {
    const hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

enum class ElementType { f32, f64, i32, i64, u8 };

// Whether a written dataset carries a checksum that every read verifies. fletcher32 is HDF5's
// own Fletcher-32 filter, one checksum per chunk, checked by H5Dread for each chunk it reads
// (a mismatch fails the read); it needs a chunked layout, so a fixed-size dataset written with
// it is chunked too (whole rows, at most kMaxChecksumChunkBytes a chunk). none: files as
// dptrain wrote them before checksums (kept for benchmarks and tests of old files).
enum class Checksum { none, fletcher32 };
// The ElementType of a C++ element type: defined for these five only (hdf5_types.cpp).
template <typename T>
ElementType element_type_of();
template <> ElementType element_type_of<float>();
template <> ElementType element_type_of<double>();
template <> ElementType element_type_of<int32_t>();
template <> ElementType element_type_of<int64_t>();
template <> ElementType element_type_of<uint8_t>();

class Object;

// Attributes and child objects are shared by files and groups.
class Object {
 public:
  hid_t id() const { return handle_.id(); }
  const std::string& path() const { return path_; }  // "file.h5:/group" for messages

  bool has(const std::string& name) const;        // link exists (dataset or group)
  bool has_attribute(const std::string& name) const;

  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, int64_t value);
  void set_attribute(const std::string& name, double value);
  void set_attribute(const std::string& name, const std::vector<double>& values);
  void set_attribute(const std::string& name, const std::vector<std::string>& values);
  std::string string_attribute(const std::string& name) const;
  int64_t int_attribute(const std::string& name) const;
  double double_attribute(const std::string& name) const;
  std::vector<double> doubles_attribute(const std::string& name) const;
  std::vector<std::string> strings_attribute(const std::string& name) const;

  class Group group(const std::string& name) const;          // open existing
  class Group create_group(const std::string& name) const;   // create (parents too)
  class Group require_group(const std::string& name) const;  // open or create
  class Dataset dataset(const std::string& name) const;
  // Opens a dataset with a chunk cache of `chunk_cache_bytes`. 0 disables the cache, so a
  // read of unfiltered chunks fetches only the selected bytes: random row reads from a
  // chunked dataset otherwise pull a whole chunk through the cache per row.
  class Dataset dataset(const std::string& name, size_t chunk_cache_bytes) const;
  std::vector<std::string> children() const;  // names of links, in name order
  // Unlinks a child dataset or group (its space is reused by later writes to the file).
  void remove(const std::string& name) const;

  // Writes a whole dataset in one call (created; an existing one of that name is unlinked
  // first and written anew, whatever its shape and type). `chunk_rows` > 0 makes the first
  // dimension chunked and unlimited, so `Dataset::append_rows` can extend it later. Every
  // dataset with at least one dimension is checksummed unless `checksum` is none (a scalar
  // cannot be chunked, so it is not).
  template <typename T>
  class Dataset write(const std::string& name, const std::vector<hsize_t>& dims, const T* data,
                      hsize_t chunk_rows = 0, int deflate_level = 0,
                      Checksum checksum = Checksum::fletcher32) const;
  // Fixed-length UTF-8 strings (see fixed_strings in hdf5_types.h) in a contiguous dataset,
  // which a filter does not cover: the dataset carries an FNV-1a-64 digest of its strings as
  // the attribute kStringDigestAttribute instead (unless `checksum` is none), which
  // read_strings verifies.
  class Dataset write_strings(const std::string& name, const std::vector<std::string>& values,
                              Checksum checksum = Checksum::fletcher32) const;

 protected:
  Object() = default;
  Object(Handle h, std::string path) : handle_(std::move(h)), path_(std::move(path)) {}
  Handle handle_;
  std::string path_;
};

class Group : public Object {
 public:
  Group(Handle h, std::string path) : Object(std::move(h), std::move(path)) {}
};

class Dataset {
 public:
  Dataset(Handle h, std::string path) : handle_(std::move(h)), path_(std::move(path)) {}
  hid_t id() const { return handle_.id(); }
  const std::string& path() const { return path_; }
  std::vector<hsize_t> dims() const;
  ElementType element_type() const;  // throws DataError for types we do not read

  // Whole dataset into `out` (resized), converting to T.
  template <typename T>
  void read(std::vector<T>& out) const;
  template <typename T>
  void read(T* out, size_t count) const;
  // Rows [first, first+count) along dimension 0 (a hyperslab; the rest of the file is not read).
  template <typename T>
  void read_rows(hsize_t first, hsize_t count, T* out) const;
  // Appends rows to a chunked dataset with an unlimited first dimension.
  template <typename T>
  void append_rows(hsize_t count, const T* data);
  // Sets dimension 0 of a chunked, extendible dataset to `rows` (dropping the rows beyond it).
  void resize_rows(hsize_t rows);
  // Throws DataError naming the dataset when the strings do not match their stored digest.
  std::vector<std::string> read_strings() const;
  // Whether every read of this dataset is verified (Fletcher-32 filter, or a string digest).
  bool checksummed() const;
  // Rows per chunk where the dataset is chunked through any filter (a compressor, shuffle,
  // Fletcher-32: every read then reads and unfilters whole chunks), else 0.
  hsize_t filtered_chunk_rows() const;
  // The first filter of the dataset's pipeline that this HDF5 library cannot apply (a
  // compressor from a plugin, as h5py's lzf), as "name (id N)"; empty where it can read it.
  std::string missing_filter() const;
  // Reads every element (every chunk through its checksum), discarding the values: a
  // DataError names the dataset where a chunk or the digest does not match.
  void verify() const;

 private:
  Handle handle_;
  std::string path_;
};

inline constexpr const char* kStringDigestAttribute = "dptrain_fnv1a64";
// Largest chunk of a fixed-size checksummed dataset: a read verifies whole chunks.
inline constexpr hsize_t kMaxChecksumChunkBytes = hsize_t{16} << 20;

class File : public Object {
 public:
  // create_in_memory: a new file that lives in memory only (HDF5's core driver without a
  // backing store); `filename` only names it in messages. Its bytes come from image(), for a
  // writer that puts them on disk itself and can tell a full disk from a bug: HDF5 1.10 cannot
  // close a file whose writes failed, and crashes when the library shuts down at exit.
  // open_in_memory: an existing file read whole into such a file, to be changed there.
  // Files are created in HDF5's 1.8 file format, and datasets created in a file this class
  // opened for writing get the 1.10 chunk indexes: superblock v2, v2 object headers (groups,
  // attributes, dataset layouts and filter pipelines) and the chunk indexes (fixed and
  // extensible arrays) carry checksums that HDF5 verifies on every read, so a flipped
  // metadata byte fails the read, not silently.
  enum class Mode { read, read_write, create_truncate, create_in_memory, open_in_memory };
  File(const std::string& filename, Mode mode);
  const std::string& filename() const { return filename_; }
  std::vector<uint8_t> image();  // the whole file as bytes (flushes first)
  void flush();  // H5Fflush: everything written so far survives a crash
  // Closes the file, checked: a writer's last metadata reaches the file here, and a failure (a
  // full disk) throws IoError, where the destructor, which closes too, must stay silent.
  void close();

 private:
  std::string filename_;
  bool writable_ = false;  // opened for writing on disk (the in-memory modes have no disk)
};

}  // namespace dp::h5
