#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace dp {

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string to_string(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::u8:
      return 1;
    case DType::bf16:
      return 2;
  }
  return 0;
}

static std::shared_ptr<void> aligned_block(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  DP_CHECK(device == Device::cpu, "Tensor::empty allocates host memory only");
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.capacity_ = t.bytes();
  t.storage_ = aligned_block(t.capacity_);
  t.data_ = t.storage_.get();
  t.owned_ = true;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.data_, 0, t.bytes());
  return t;
}

Tensor Tensor::view(void* data, const Shape& shape, DType dtype, Device device,
                    std::shared_ptr<void> keeper) {
  Tensor t;
  t.storage_ = std::move(keeper);
  t.data_ = data;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.capacity_ = t.bytes();  // a view may shrink and grow back within what it was given
  return t;
}

void Tensor::ensure(const Shape& shape, DType dtype) {
  size_t need = dp::numel(shape) * dtype_size(dtype);
  if (data_ && !owned_) {
    DP_CHECK(need <= capacity_, "cannot grow a view from {} to {}", to_string(shape_),
             to_string(shape));
  } else if (need > capacity_ || !data_) {
    storage_ = aligned_block(need);
    capacity_ = need;
    data_ = storage_.get();
    owned_ = true;
  }
  shape_ = shape;
  dtype_ = dtype;
  layout_ = Layout::nhwc;
}

Tensor Tensor::reshaped(const Shape& shape) const {
  DP_CHECK(dp::numel(shape) == numel(), "reshape {} -> {}", to_string(shape_), to_string(shape));
  DP_CHECK(layout_ == Layout::nhwc, "reshape of a channel-blocked tensor {}", to_string(shape_));
  Tensor t = *this;
  t.shape_ = shape;
  t.owned_ = false;
  return t;
}

}  // namespace dp
