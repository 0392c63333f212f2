#include "backend/cuda/device_allocator.h"

#include "backend/cuda/cuda_check.h"

namespace dp::cuda {
namespace {

// 512-byte granularity for small blocks, 2 MiB for large ones: few distinct sizes, so blocks
// are reused across layers of similar shape, at a bounded waste.
size_t round_size(size_t bytes) {
  constexpr size_t small = 512, large = size_t(2) << 20;
  if (bytes == 0) bytes = 1;
  const size_t unit = bytes < (size_t(1) << 20) ? small : large;
  return (bytes + unit - 1) / unit * unit;
}

}  // namespace

DeviceAllocator::DeviceAllocator(int device) : device_(device) {}

DeviceAllocator::~DeviceAllocator() { release_cached(); }

std::shared_ptr<void> DeviceAllocator::allocate(const std::shared_ptr<DeviceAllocator>& self,
                                                size_t bytes) {
  const size_t rounded = round_size(bytes);
  void* p = self->take(rounded);
  return std::shared_ptr<void>(p, [self, rounded](void* q) { self->give_back(q, rounded); });
}

void* DeviceAllocator::take(size_t rounded) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = free_.find(rounded);
  if (it != free_.end()) {
    void* p = it->second;
    free_.erase(it);
    in_use_ += rounded;
    return p;
  }
  DP_CUDA_CHECK(cudaSetDevice(device_));
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, rounded);
  if (status == cudaErrorMemoryAllocation && !capturing_) {
    (void)cudaGetLastError();  // clear the sticky-free error state before retrying
    free_cached_locked();
    status = cudaMalloc(&p, rounded);
  }
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // the next launch's check must not report this
    throw Error(ExitCode::internal,
                fmt::format("cudaMalloc of {} bytes failed on GPU {}: {} ({} bytes in use{})",
                            rounded, device_, cudaGetErrorString(status), in_use_,
                            capturing_ ? ", during a CUDA graph capture" : ""));
  }
  in_use_ += rounded;
  return p;
}

void DeviceAllocator::give_back(void* p, size_t rounded) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_.emplace(rounded, p);
  in_use_ -= rounded;
  ++releases_;
}

uint64_t DeviceAllocator::releases() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return releases_;
}

void DeviceAllocator::set_capturing(bool capturing) {
  std::lock_guard<std::mutex> lock(mutex_);
  capturing_ = capturing;
}

void DeviceAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

void DeviceAllocator::free_cached_locked() {
  // Errors are ignored: this also runs at exit, possibly after the runtime shut down.
  for (auto& [size, block] : free_) (void)cudaFree(block);
  free_.clear();
}

void* ScratchBuffer::get(const std::shared_ptr<DeviceAllocator>& pool, size_t bytes) {
  if (bytes > size_ || !block_) {
    block_.reset();  // give the old block back first so the pool can reuse the memory
    block_ = DeviceAllocator::allocate(pool, bytes);
    size_ = bytes;
  }
  return block_.get();
}

}  // namespace dp::cuda
