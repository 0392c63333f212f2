// A host batch made available to the backend's device: on the CPU backend a zero-copy view,
// elsewhere a device buffer reused across steps.
#pragma once

#include "backend/backend.h"
#include "data/sharded_loader.h"

namespace dp {

class DeviceBatch {
 public:
  explicit DeviceBatch(Backend& backend) : backend_(backend) {}
  void upload(const data::HostBatch& batch) {
    if (backend_.device() == Device::cpu) {
      images_ = batch.images;
      labels_ = batch.labels;
      return;
    }
    if (images_.shape() != batch.images.shape()) images_ = backend_.allocate(batch.images.shape());
    if (labels_.shape() != batch.labels.shape())
      labels_ = backend_.allocate(batch.labels.shape(), DType::i32);
    backend_.copy_from_host(batch.images.data(), images_);
    backend_.copy_from_host(batch.labels.data<int32_t>(), labels_);
  }
  const Tensor& images() const { return images_; }
  const Tensor& labels() const { return labels_; }

 private:
  Backend& backend_;
  Tensor images_, labels_;
};

}  // namespace dp
