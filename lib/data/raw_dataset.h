// In-memory form of a source dataset between reading its original files and writing the
// packed HDF5 file: both splits as (N, H, W, C) uint8 plus where they came from.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dp::data {

struct RawSplit {
  int64_t count = 0;
  std::vector<uint8_t> images;  // count * H * W * C, channels-last
  std::vector<uint8_t> labels;  // count
};

struct RawDataset {
  std::string name;
  std::vector<std::string> class_names;
  int64_t height = 0, width = 0, channels = 0;
  RawSplit train, test;
  std::vector<std::pair<std::string, std::string>> sources;  // (file name, sha256 hex)
};

// CIFAR-10 "binary version" directory (data_batch_1..5.bin, test_batch.bin, batches.meta.txt).
RawDataset read_cifar10(const std::string& dir);
// CIFAR-100 binary version (train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt);
// `fine`: the 100 fine labels, else the 20 coarse ones.
RawDataset read_cifar100(const std::string& dir, bool fine);
// MNIST-style IDX directory (train-/t10k- images/labels, each plain or .gz).
RawDataset read_idx_dataset(const std::string& dir, const std::string& name,
                            const std::vector<std::string>& class_names);

}  // namespace dp::data
