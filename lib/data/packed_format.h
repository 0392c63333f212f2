// The layout of a packed dataset file (written by `dptrain pack`, read by HDF5Dataset).
//
//   /                          root attributes:
//     format         string    "dptrain-dataset"
//     format_version int64     1
//     name           string    "cifar10" | "cifar100" | "cifar100-coarse" | "mnist" |
//                              "fashion-mnist" | an image folder's name
//     num_classes    int64     e.g. 10
//     height, width, channels  int64   image shape (H, W, C)
//     mean, std      double[C] per-channel mean / population std of the TRAIN images scaled to
//                              [0, 1] (copy of the /train attributes, for convenience)
//     sources        string[]  one "<file name> <sha256 hex>" entry per source file, hashed as
//                              stored on disk (a .gz file is hashed compressed); an image folder:
//                              one "<folder>/ <sha256>" entry, the digest of its tree
//     source_counts  string[]  image folders: "<split>/<class> <images packed>"
//     skipped        string[]  image folders with --skip-bad: "<file>: <problem>" (if any)
//   /class_names     string[num_classes]  (fixed-length UTF-8; files packed before read as
//                                          variable-length)
//   /train, /test    groups, each with
//     attributes     count int64 (= N); mean, std double[C] (of the TRAIN split, on both groups;
//                              the reader normalises both splits with /train's, else the root's)
//     images         uint8 (N, H, W, C)   channels-last; one row per chunk, no compression, a
//                                          Fletcher-32 checksum per chunk (files packed before
//                                          checksums: 256 rows per chunk, no checksum)
//     labels         uint8 (N)             values in [0, num_classes); 4096 rows per chunk,
//                                          Fletcher-32
//   /class_names carries the FNV-1a-64 digest of its strings (attribute dptrain_fnv1a64).
//   No format_version change: a reader tells checksummed datasets by their filter.
#pragma once

#include <cstdint>

namespace dp::data::packed {

inline constexpr const char* kFormat = "dptrain-dataset";
inline constexpr int64_t kFormatVersion = 1;
// Images are chunked one row per chunk: each chunk carries a Fletcher-32 checksum, and a read
// verifies whole chunks, so a shuffled batch reads and checks only its own rows (with 256-row
// chunks every row read would pull and checksum 256 rows; measurements:
// tests/bench/results/code-measurements-data-io.md, 'packed_format.h: one row per chunk').
// Labels are read whole once.
inline constexpr unsigned kChunkRows = 1;
inline constexpr unsigned kLabelChunkRows = 4096;
// The layout of files packed before checksums (format_version 1 without filters): 256 rows a
// chunk for images and labels. Still read, unverified.
inline constexpr unsigned kUncheckedChunkRows = 256;

}  // namespace dp::data::packed
