// A caching allocator for device memory: freed blocks go back to a per-size free list and are
// handed out again, so a training step that asks for the same sizes every time calls
// cudaMalloc only during its first steps (cudaMalloc synchronises the device, and is not
// allowed while a CUDA graph is being captured). When cudaMalloc runs out of memory the
// cached blocks are released and the allocation is tried once more, but not during a capture,
// where cudaFree would invalidate it: the allocation fails, and the caller runs eagerly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace dp::cuda {

class DeviceAllocator {
 public:
  explicit DeviceAllocator(int device);
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // A block of at least `bytes`; the returned handle gives the block back when the last
  // copy goes (the pool outlives every block it handed out).
  static std::shared_ptr<void> allocate(const std::shared_ptr<DeviceAllocator>& self, size_t bytes);
  // How many blocks have been given back so far: a captured graph that saw one count is safe
  // to replay while the count is unchanged (no block it used can have been handed out again).
  uint64_t releases() const;
  // cudaFree every cached (unused) block.
  void release_cached();
  // Set while a graph is captured (capture_graph): no cudaFree then.
  void set_capturing(bool capturing);

 private:
  void* take(size_t rounded);
  void give_back(void* p, size_t rounded);
  void free_cached_locked();  // cudaFree every cached block; mutex_ held

  int device_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // rounded size -> block
  size_t in_use_ = 0;                  // for the out-of-memory message
  uint64_t releases_ = 0;
  bool capturing_ = false;
};

// One device buffer a backend reuses for short-lived scratch (conv workspace, transposed
// weights): grows on demand, never shrinks. Work is stream-ordered on the backend's one
// stream, so a later op may reuse the memory as soon as it is queued.
class ScratchBuffer {
 public:
  void* get(const std::shared_ptr<DeviceAllocator>& pool, size_t bytes);
  size_t size() const { return size_; }

 private:
  std::shared_ptr<void> block_;
  size_t size_ = 0;
};

}  // namespace dp::cuda
