// Moving input batches from host memory to a device backend's memory. A host backend needs
// none: it reads the loader's buffers in place.
#pragma once

#include "core/tensor.h"

namespace dp {

class BatchUploader {
 public:
  virtual ~BatchUploader() = default;
  // Queues the copy of `host` to the device and returns the device tensor. Work queued on the
  // backend's compute stream after this call sees the copied data; `host` may be reused as
  // soon as the call returns. Work that reads the returned tensor must be queued before the
  // next upload: the upload after that reuses its memory, once that work is done. So the next
  // batch's copy may overlap the work on this one.
  virtual const Tensor& upload(const Tensor& host) = 0;
};

}  // namespace dp
