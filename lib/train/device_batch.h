// A host batch made available to the backend's device: on a host backend a zero-copy view of
// the loader's buffers, on a device backend the backend's uploaders (the CUDA one copies
// through pinned memory on a copy stream, overlapping the previous step's work). Where the
// loader deferred augmentation (LoaderOptions::defer_augmentation), the raw pixels and the
// draws go up instead and the backend augments them (Backend::augment_batch) into a buffer
// kept across steps, so the images keep one address (what a captured graph was recorded on).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "core/error.h"
#include "data/sharded_loader.h"
#include "train/config.h"

namespace dp {

// The backend's form of the loader's augmentation settings.
inline AugmentSpec augment_spec_for(const data::AugmentConfig& config) {
  AugmentSpec spec;
  spec.pad = config.crop_padding;
  spec.reflect = config.reflect;
  if (config.normalize)
    for (size_t c = 0; c < config.mean.size(); ++c) {
      spec.mean.push_back(static_cast<float>(config.mean[c]));
      spec.std.push_back(static_cast<float>(config.std[c]));
    }
  return spec;
}

// Whether the backend augments (`augment_on`: the --augment-on value). automatic picks the
// device for a device backend: it receives a quarter of the bytes and the host does no pixel
// work.
inline bool augments_on_backend(AugmentOn augment_on, const Backend& backend) {
  return augment_on == AugmentOn::device ||
         (augment_on == AugmentOn::automatic && backend.device() != Device::cpu);
}

class DeviceBatch {
 public:
  // `augment`: the loader's augmentation when the loader defers it to the backend.
  explicit DeviceBatch(Backend& backend, std::optional<AugmentSpec> augment = std::nullopt)
      : backend_(backend), augment_(std::move(augment)) {}

  void upload(const data::HostBatch& batch) {
    labels_ = up(labels_uploader_, batch.labels);
    if (!batch.raw_images.defined()) {
      images_ = up(images_uploader_, batch.images);
      return;
    }
    DP_CHECK(augment_.has_value(), "a batch with deferred augmentation needs its AugmentSpec");
    // Each uploaded tensor is read by augment_batch, queued before the next upload.
    const Tensor& raw = up(raw_uploader_, batch.raw_images);
    const Tensor& crop = up(crop_uploader_, batch.crop_yx);
    const Tensor& flip = up(flip_uploader_, batch.flip);
    backend_.augment_batch(*augment_, raw, crop, flip, augmented_);
    images_ = augmented_;
  }
  const Tensor& images() const { return images_; }
  const Tensor& labels() const { return labels_; }

 private:
  // `host` on the device: itself on a host backend, else through this stream's uploader.
  const Tensor& up(std::unique_ptr<BatchUploader>& uploader, const Tensor& host) {
    if (backend_.device() == Device::cpu) return host;
    if (!uploader) uploader = backend_.make_batch_uploader();
    DP_CHECK(uploader != nullptr, "backend {} has no batch uploader", backend_.name());
    return uploader->upload(host);
  }

  Backend& backend_;
  std::optional<AugmentSpec> augment_;
  std::unique_ptr<BatchUploader> images_uploader_, labels_uploader_, raw_uploader_,
      crop_uploader_, flip_uploader_;
  Tensor images_, labels_, augmented_;
};

}  // namespace dp
