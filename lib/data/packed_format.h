// The layout of a packed dataset file (written by `dptrain pack`, read by HDF5Dataset).
//
//   /                          root attributes:
//     format         string    "dptrain-dataset"
//     format_version int64     1
//     name           string    "cifar10" | "mnist" | "fashion-mnist"
//     num_classes    int64     e.g. 10
//     height, width, channels  int64   image shape (H, W, C)
//     mean, std      double[C] per-channel mean / population std of the TRAIN images scaled to
//                              [0, 1] (copy of the /train attributes, for convenience)
//     sources        string[]  one "<file name> <sha256 hex>" entry per source file, hashed as
//                              stored on disk (a .gz file is hashed compressed)
//   /class_names     string[num_classes]  (variable-length UTF-8)
//   /train, /test    groups, each with
//     images         uint8 (N, H, W, C)   channels-last; chunked 256 rows per chunk, no
//                                          compression, so reading a list of rows is cheap
//     labels         uint8 (N)             values in [0, num_classes)
//     attributes     count int64 (= N); mean, std double[C] (of the TRAIN split, on both groups
//                              so that a split read alone normalises like training did)
#pragma once

#include <cstdint>

namespace dp::data::packed {

inline constexpr const char* kFormat = "dptrain-dataset";
inline constexpr int64_t kFormatVersion = 1;
inline constexpr unsigned kChunkRows = 256;

}  // namespace dp::data::packed
