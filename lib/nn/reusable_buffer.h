// A device buffer that a layer keeps across steps: grows (through the Backend's allocator)
// only when a larger shape arrives, otherwise hands out a view of the same memory, so a
// steady-state training step allocates nothing. Works for any device, unlike
// Tensor::ensure, which can only grow host memory.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "core/tensor.h"

namespace dp::nn {

class ReusableBuffer {
 public:
  // The buffer as a tensor of `shape`; contents are unspecified after a regrow.
  Tensor& shaped(Backend& backend, const Shape& shape, DType dtype = DType::f32) {
    size_t need = static_cast<size_t>(dp::numel(shape)) * dtype_size(dtype);
    if (!storage_ || need > capacity_) {
      int64_t words = static_cast<int64_t>((need + 3) / 4);
      storage_ = std::make_shared<Tensor>(backend.allocate({words > 0 ? words : 1}, DType::f32));
      capacity_ = need;
      view_ = Tensor();
    }
    if (!view_.defined() || view_.shape() != shape || view_.dtype() != dtype)
      view_ = Tensor::view(storage_->data(), shape, dtype, storage_->device(), storage_);
    return view_;
  }
  Tensor& tensor() { return view_; }
  const Tensor& tensor() const { return view_; }

 private:
  std::shared_ptr<Tensor> storage_;
  size_t capacity_ = 0;
  Tensor view_;
};

}  // namespace dp::nn
