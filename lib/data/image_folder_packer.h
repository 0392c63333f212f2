// `dptrain pack --format folder`: an ImageFolder tree (data/folder_source.h) decoded in
// parallel (data/image_decode.h, optionally data/image_resize.h) and streamed into a packed
// file chunk by chunk, so memory stays bounded by the chunk size whatever the dataset's size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/packer.h"

namespace dp::data {

// The decoded images of one chunk are held at most twice (the chunk being written and the
// next one being decoded), each chunk at most this many bytes of pixels and this many files
// (the progress moves once a chunk: at a few thousand files/s, a few times a second).
inline constexpr size_t kFolderChunkBytes = size_t{128} << 20;
inline constexpr size_t kFolderChunkFiles = 1024;

// Packs options.source_dir into `path` (the caller renames it into place). Fills the summary's
// counts, shape, classes, mean/std, sources (the tree's digest) and skipped files.
PackSummary pack_image_folder(const PackOptions& options, const std::string& path);

}  // namespace dp::data
