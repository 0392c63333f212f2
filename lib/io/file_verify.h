// End-to-end verification of any HDF5 file dptrain writes (packed dataset, checkpoint,
// metrics, eval): every object header and attribute is read (HDF5 checks the metadata
// checksums of the 1.8 file format on each read) and every dataset is read whole, each chunk
// through its Fletcher-32 checksum and each string dataset against its digest.
#pragma once

#include <cstdint>
#include <string>

namespace dp {

struct FileVerification {
  bool ok = false;               // every read succeeded and every checksum matched
  std::string failed_object;     // where it failed ("/params/conv1.weight"); "" for the file itself
  bool failed_at_dataset = false;  // failed_object is a dataset (else a group or the file)
  std::string problem;           // the one-line reason when !ok
  int64_t datasets = 0;          // datasets read
  int64_t checksummed = 0;       // of those, how many carry a checksum
  // HDF5 checksums the superblock, object headers and attributes from superblock version 2
  // (the 1.8 format dptrain writes); h5py's default format (version 0) has none of them.
  unsigned superblock_version = 0;
  bool metadata_checksummed() const { return superblock_version >= 2; }
  bool verified() const { return ok && checksummed == datasets && metadata_checksummed(); }
};

// What an ok but unverified file lacks: "M of N datasets carry no checksum", and/or "its
// metadata (superblock version V) carries no checksums".
std::string unverified_parts(const FileVerification& v);

// Never throws for a bad file: the result says what failed and where.
FileVerification verify_file(const std::string& path);

}  // namespace dp
