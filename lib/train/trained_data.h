// What a checkpoint records of the data it was trained on (class names, training-set size,
// the packed file's source digests, the normalisation statistics), and its comparison with a
// dataset: `--resume` needs the same data, `dptrain eval` the same classes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint.h"

namespace dp {

namespace data {
class HDF5Dataset;
}

struct TrainedData {
  std::vector<std::string> class_names;
  int64_t train_size = 0;
  std::vector<std::string> sources;  // the packed file's "sources" (none in a user's own file)
  std::vector<double> mean, std;     // the statistics the run normalised with (--normalize)
};

TrainedData trained_data(const data::HDF5Dataset& train_set);
void record_trained_data(const TrainedData& data, CheckpointMeta& meta);

// Whether the checkpoint's run trained on normalised input (--normalize); files from before it
// was recorded: on.
bool trained_normalized(const CheckpointMeta& meta);

// The statistics a checkpoint's run normalised with, for `channels` channels; both empty when
// it recorded none (written before it did). Throws DataError naming `path` when malformed.
struct Normalization {
  std::vector<double> mean, std;
};
Normalization recorded_normalization(const CheckpointMeta& meta, int64_t channels,
                                     const std::string& path);

// Empty when the checkpoint's classes are `names` (same names, same order) or it recorded none
// (written before it did); else the first difference, for a message.
std::string class_names_difference(const CheckpointMeta& meta,
                                   const std::vector<std::string>& names);
// The same for the classes, the training-set size and the source digests together.
std::string trained_data_difference(const CheckpointMeta& meta, const TrainedData& data);

}  // namespace dp
