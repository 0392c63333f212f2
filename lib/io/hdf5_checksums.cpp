// Checksums of what the wrapper writes, and their verification: the dataset creation
// properties that add HDF5's Fletcher-32 filter (with the chunked layout it needs), the
// FNV-1a-64 digest of string datasets, whether a dataset carries either, a whole-dataset
// verification, and the once-per-file note for files written before checksums existed.
#include <mutex>
#include <set>

#include "core/hash.h"
#include "core/log.h"
#include "io/hdf5.h"
#include "io/hdf5_checksums.h"
#include "io/hdf5_types.h"

namespace dp::h5 {

void add_checksum_filter(hid_t dcpl, const std::vector<hsize_t>& dims, hsize_t element_bytes,
                         bool chunked_already, const std::string& where) {
  if (!chunked_already) {
    // One chunk of whole rows, at most kMaxChecksumChunkBytes: a small tensor is one chunk,
    // read and verified in one piece. Chunk dimensions must be positive even for 0 rows.
    std::vector<hsize_t> chunk = dims;
    hsize_t row_bytes = element_bytes;
    for (size_t i = 1; i < dims.size(); ++i) row_bytes *= std::max<hsize_t>(dims[i], 1);
    const hsize_t max_rows = std::max<hsize_t>(1, kMaxChecksumChunkBytes / row_bytes);
    for (auto& d : chunk) d = std::max<hsize_t>(d, 1);
    chunk[0] = std::min(chunk[0], max_rows);
    DP_H5_CHECK(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), where);
  }
  DP_H5_CHECK(H5Pset_fletcher32(dcpl), where);
}

uint64_t strings_digest(const std::vector<std::string>& values) {
  // Each string's length first, so ["ab", "c"] and ["a", "bc"] differ.
  uint64_t digest = hash::kFnv1a64OffsetBasis;
  for (const auto& v : values) {
    digest = hash::fnv1a64_step(digest, v.size());
    digest = hash::fnv1a64(v, digest);
  }
  return digest;
}

void check_strings_digest(const Dataset& ds, hid_t id, const std::vector<std::string>& values) {
  if (DP_H5_CHECK(H5Aexists(id, kStringDigestAttribute), ds.path()) == 0) return;
  const int64_t stored = read_int_attribute(id, ds.path(), kStringDigestAttribute);
  if (static_cast<uint64_t>(stored) != strings_digest(values))
    throw DataError(fmt::format(
        "{}: checksum mismatch (the strings do not match their stored digest {}): the file is "
        "corrupted, or the strings were edited (then delete that attribute); restore it from a "
        "good copy or write it again",
        ds.path(), kStringDigestAttribute));
}

bool Dataset::checksummed() const {
  Lock lock(library_lock());
  Handle dcpl(DP_H5_CHECK(H5Dget_create_plist(id()), path_), H5Pclose);
  unsigned flags = 0;
  size_t n_values = 0;
  unsigned config = 0;
  if (H5Pget_filter_by_id2(dcpl.id(), H5Z_FILTER_FLETCHER32, &flags, &n_values, nullptr, 0,
                           nullptr, &config) >= 0)
    return true;
  H5Eclear2(H5E_DEFAULT);  // "filter not found" is the answer, not an error
  return DP_H5_CHECK(H5Aexists(id(), kStringDigestAttribute), path_) > 0;
}

void Dataset::verify() const {
  Lock lock(library_lock());
  Handle type(DP_H5_CHECK(H5Dget_type(id()), path_), H5Tclose);
  if (type_class(type.id(), path_) == H5T_STRING) {
    read_strings();
    return;
  }
  // Blocks of whole rows of at most kMaxChecksumChunkBytes keep memory bounded; every chunk
  // is read, and its Fletcher-32 checked, as any reader's H5Dread would.
  const auto d = dims();
  const hsize_t element_bytes = type_size(type.id(), path_);
  if (d.empty()) {
    std::vector<uint8_t> scalar(element_bytes);
    DP_H5_CHECK(H5Dread(id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, scalar.data()), path_);
    return;
  }
  hsize_t row_bytes = element_bytes;
  for (size_t i = 1; i < d.size(); ++i) row_bytes *= d[i];
  if (row_bytes == 0) return;
  const hsize_t block = std::max<hsize_t>(1, kMaxChecksumChunkBytes / row_bytes);
  std::vector<uint8_t> buffer(std::min(block, d[0]) * row_bytes);
  for (hsize_t first = 0; first < d[0]; first += block) {
    const RowSelection rows = select_rows(id(), d, first, std::min(block, d[0] - first), path_);
    DP_H5_CHECK(H5Dread(id(), type.id(), rows.mem_space.id(), rows.file_space.id(), H5P_DEFAULT,
                        buffer.data()),
                path_);
  }
}

void note_unverified_once(const std::string& filename) {
  static std::mutex mutex;
  static std::set<std::string> noted;
  std::lock_guard<std::mutex> lock(mutex);
  if (!noted.insert(filename).second) return;
  log::info(
      "note: {} has no checksums (written by an earlier dptrain, or by another "
      "program): it is read unverified; write it again with dptrain to have every read checked",
      filename);
}

}  // namespace dp::h5
