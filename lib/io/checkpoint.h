// Checkpoint files: named tensors in PyTorch layout under /params, /buffers,
// /optimizer/momentum and /lookahead (torchvision state_dict names), the rest of the training
// state as arrays under /train_state, plus scalar attributes (epoch, step, world size,
// architecture...).
// Saved to "<path>.tmp", flushed, fsync'ed, closed and renamed, so neither a killed process nor
// a crashed node ever leaves a half-written file where the last good checkpoint was. Knows
// nothing of models or training: callers pass name/shape/pointer triples for host memory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dp {

namespace h5 {
class File;
}

struct NamedBuffer {
  std::string name;
  Shape shape;
  float* data;  // host memory: read from on save, written to on load
};

struct NamedDoubles {
  std::string name;
  Shape shape;
  double* data;  // host memory: read from on save, written to on load
};

struct CheckpointSections {
  std::vector<NamedBuffer> params;
  std::vector<NamedBuffer> buffers;
  std::vector<NamedBuffer> momentum;  // may be empty (e.g. evaluation only)
  // /lookahead/params and /lookahead/buffers: a Lookahead average of the model's state, under
  // the names of /params and /buffers. May be empty (a run without Lookahead).
  std::vector<NamedBuffer> lookahead_params = {}, lookahead_buffers = {};
  // /train_state/<name>: what exact resumption needs beyond the model (every rank's BN
  // statistics, the running sums of a half-finished epoch...). May be empty.
  std::vector<NamedBuffer> train_state_f32 = {};
  std::vector<NamedDoubles> train_state_f64 = {};
};

struct CheckpointMeta {
  std::map<std::string, int64_t> ints;         // epoch, step, world_size, format_version...
  std::map<std::string, std::string> strings;  // arch, dataset, rng state...

  // An attribute older checkpoints may lack: `fallback` where it is absent.
  int64_t int_or(const std::string& key, int64_t fallback) const {
    const auto it = ints.find(key);
    return it == ints.end() ? fallback : it->second;
  }
  std::string string_or(const std::string& key, const std::string& fallback) const {
    const auto it = strings.find(key);
    return it == strings.end() ? fallback : it->second;
  }
};

// 2: adds /train_state and the resume attributes (step_in_epoch, batch_size...). Version 1
// files still load for evaluation (they hold the same /params and /buffers).
constexpr int64_t kCheckpointFormatVersion = 2;
// The attribute holding it, which save_checkpoint writes itself.
inline constexpr const char* kFormatVersionAttribute = "format_version";
constexpr int64_t kOldestReadableCheckpointFormat = 1;

// Every tensor is stored with a Fletcher-32 checksum per chunk (a tensor of up to 16 MiB is
// one chunk) that every load verifies; `checksums` false writes them as dptrain did before
// checksums (for the with/without benchmark and tests of old files).
void save_checkpoint(const std::string& path, const CheckpointSections& sections,
                     const CheckpointMeta& meta, bool checksums = true);

// Loads every tensor named in `sections` (shapes must match exactly; a missing or mis-shaped
// tensor, or one whose checksum does not match, is a DataError naming it) and returns the
// file's attributes. A file written without checksums loads, noted once as unverified.
CheckpointMeta load_checkpoint(const std::string& path, const CheckpointSections& sections);

// Reads only the attributes (to build the right model before loading tensors).
CheckpointMeta read_checkpoint_meta(const std::string& path);

// Whether an open file is one save_checkpoint wrote (it holds the parameters' group).
bool is_checkpoint_file(const h5::File& file);

// Makes `link` another name of the finished checkpoint `target` (a hard link, or a copy where
// the file system has none), replacing `link` atomically: a reader sees the old or the new file.
void publish_checkpoint_as(const std::string& target, const std::string& link);

}  // namespace dp
