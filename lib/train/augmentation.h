// The input pipeline's augmentation, assembled in one place for training and evaluation:
// what the loader applies (or hands to the backend with the raw pixels, --augment-on) and how
// an evaluation view (a fixed shift and/or mirror of every test image) is expressed.
#pragma once

#include <optional>
#include <vector>

#include "backend/backend.h"
#include "data/hdf5_dataset.h"
#include "data/sharded_loader.h"
#include "train/config.h"

namespace dp {

// One way of showing the test images to the model; evaluation averages the logits of its
// views, weighted (sum of weight x logits, divided by the sum of the weights). The identity
// view is the default-constructed one.
struct EvalView {
  int shift_y = 0, shift_x = 0;  // the crop window's offset in pixels (zero-padded outside)
  bool flip = false;             // mirror horizontally (after the shift)
  bool reflect = false;          // reflect-padded outside instead (|shift| < the image size)
  float weight = 1.0f;
};

// Test-time augmentation levels (--tta, airbench94's): 0 the image; 1 the image and its
// mirror, equal weights; 2 half of level 1 plus half the mean of level 1 on the two copies
// shifted by one pixel diagonally with reflection (reflect pad 1, crops at (0, 0) and (2, 2)):
// 6 views weighted 2, 2, 1, 1, 1, 1 (out of 8). Throws UsageError for another level.
std::vector<EvalView> tta_views(int level);

// Training: random crop with --crop-padding, random flip with --flip, normalised with the
// training set's statistics under --normalize; draws seeded by --seed.
data::AugmentConfig training_augmentation(const TrainConfig& config,
                                          const data::HDF5Dataset& train_set);
// Evaluation: `view` applied to every image, normalised with the split's statistics.
data::AugmentConfig evaluation_augmentation(const EvalView& view, bool normalize,
                                            const data::HDF5Dataset& split);

// Loader options for `augment` in batches of `batch_size`; with `on_backend` the loader hands
// out raw pixels and draws instead (data::LoaderOptions::defer_augmentation).
data::LoaderOptions loader_options(const data::AugmentConfig& augment, int64_t batch_size,
                                   int prefetch, bool on_backend);
// The backend's augmentation for loader `options`, or empty where the loader augments.
std::optional<AugmentSpec> backend_augmentation(const data::LoaderOptions& options);

}  // namespace dp
