// A host batch made available to the backend's device: on a host backend a zero-copy view of
// the loader's buffers, on a device backend the backend's uploaders (the CUDA one copies
// through pinned memory on a copy stream, overlapping the previous step's work).
#pragma once

#include <memory>

#include "backend/backend.h"
#include "data/sharded_loader.h"

namespace dp {

class DeviceBatch {
 public:
  explicit DeviceBatch(Backend& backend)
      : images_uploader_(backend.make_batch_uploader()),
        labels_uploader_(backend.make_batch_uploader()) {}
  void upload(const data::HostBatch& batch) {
    if (!images_uploader_) {
      images_ = batch.images;
      labels_ = batch.labels;
      return;
    }
    images_ = images_uploader_->upload(batch.images);
    labels_ = labels_uploader_->upload(batch.labels);
  }
  const Tensor& images() const { return images_; }
  const Tensor& labels() const { return labels_; }

 private:
  std::unique_ptr<BatchUploader> images_uploader_, labels_uploader_;
  Tensor images_, labels_;
};

}  // namespace dp
