// Checkpoint files: named tensors in PyTorch layout under /params, /buffers and
// /optimizer/momentum (torchvision state_dict names), plus scalar attributes (epoch, step,
// RNG state, architecture...). Saved to "<path>.tmp", flushed, closed and renamed, so a crash
// mid-write never replaces the last good checkpoint. Knows nothing of models: callers pass
// name/shape/pointer triples for host memory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dp {

struct NamedBuffer {
  std::string name;
  Shape shape;
  float* data;  // host memory: read from on save, written to on load
};

struct CheckpointSections {
  std::vector<NamedBuffer> params;
  std::vector<NamedBuffer> buffers;
  std::vector<NamedBuffer> momentum;  // may be empty (e.g. evaluation only)
};

struct CheckpointMeta {
  std::map<std::string, int64_t> ints;         // epoch, step, world_size, format_version...
  std::map<std::string, std::string> strings;  // arch, dataset, rng state...
};

constexpr int64_t kCheckpointFormatVersion = 1;

void save_checkpoint(const std::string& path, const CheckpointSections& sections,
                     const CheckpointMeta& meta);

// Loads every tensor named in `sections` (shapes must match exactly; a missing or mis-shaped
// tensor is a DataError naming it) and returns the file's attributes.
CheckpointMeta load_checkpoint(const std::string& path, const CheckpointSections& sections);

// Reads only the attributes (to build the right model before loading tensors).
CheckpointMeta read_checkpoint_meta(const std::string& path);

}  // namespace dp
