// Tensor: a shape, a dtype, a device and storage that is either owned (aligned, shared between
// copies of the handle) or a view into someone else's buffer (the flat parameter buffer).
// Activations are channels-last: shape {N, H, W, C}, which is also the memory order unless the
// tensor's layout says otherwise (the CPU backend's blocked activations, below). Convolution
// weights keep PyTorch's {O, I, KH, KW} so checkpoints match torchvision's state_dict.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dp {

enum class Device { cpu, cuda };
// bf16: bfloat16 activations of the CUDA backend's mixed precision (no host arithmetic).
enum class DType { f32, i32, u8, bf16 };

using Shape = std::vector<int64_t>;

// Where an activation's elements sit in memory; the shape stays {N, H, W, C} either way.
// nhwc: the shape's order. nchw16c: oneDNN's nChw16c, memory order {N, C/16, H, W, 16}, which
// the CPU backend keeps inside its stages of 32+ channels because oneDNN's Winograd and fastest
// blocked kernels read nothing else (cpu/activation_layout.h). Only the backend that produced
// a blocked tensor reads it; copy_to_host always hands out nhwc.
enum class Layout { nhwc, nchw16c };
constexpr int64_t kChannelBlock = 16;  // the channels of one nchw16c block

int64_t numel(const Shape& shape);
std::string to_string(const Shape& shape);
size_t dtype_size(DType dtype);

class Tensor {
 public:
  Tensor() = default;

  // Owned storage, 64-byte aligned, uninitialised. Only Device::cpu allocates here; device
  // backends allocate through their own allocator and wrap with `view` + a keeper.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  // Non-owning view; `keeper` (optional) keeps the underlying allocation alive.
  static Tensor view(void* data, const Shape& shape, DType dtype = DType::f32,
                     Device device = Device::cpu, std::shared_ptr<void> keeper = nullptr);

  // Reshape to `shape`, reallocating only when the owned capacity is too small. Lets a layer
  // keep one output buffer across steps (no per-step allocation). Not allowed on views.
  // The layout goes back to nhwc: whoever writes the tensor next says otherwise.
  void ensure(const Shape& shape, DType dtype = DType::f32);

  template <typename T = float>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <typename T = float>
  const T* data() const {
    return static_cast<const T*>(data_);
  }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return dp::numel(shape_); }
  size_t bytes() const { return numel() * dtype_size(dtype_); }
  // Bytes this tensor may grow to without reallocating: the owned block's size, or what a
  // view was first given (it can shrink to a partial batch and grow back within that).
  size_t capacity() const { return capacity_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool defined() const { return data_ != nullptr; }
  Layout layout() const { return layout_; }
  void set_layout(Layout layout) { layout_ = layout; }
  // A view of the same storage with another shape of equal element count (nhwc tensors only:
  // a blocked tensor's memory order means nothing under another shape).
  Tensor reshaped(const Shape& shape) const;

 private:
  std::shared_ptr<void> storage_;
  size_t capacity_ = 0;
  bool owned_ = false;
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
  Layout layout_ = Layout::nhwc;
};

}  // namespace dp
