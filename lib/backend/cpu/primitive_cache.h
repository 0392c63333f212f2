// Per-shape cache of oneDNN primitives and the buffers that go with them. Creating a primitive
// (jit code generation) costs milliseconds, so each op builds one entry per geometry on first
// use and every later step only sets data handles and executes. The key is a fixed-size array
// so a lookup allocates nothing. Not thread-safe: a backend is driven by one thread.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "core/hash.h"

namespace dp::cpu {

using CacheKey = std::array<int64_t, 10>;

// FNV-1a with one step per 64-bit field. It only spreads keys over the map's buckets: the
// cache is never iterated, so the hash values never reach a result.
struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const {
    uint64_t h = hash::kFnv1a64OffsetBasis;
    for (int64_t v : k) h = hash::fnv1a64_step(h, static_cast<uint64_t>(v));
    return static_cast<size_t>(h);
  }
};

inline int64_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

template <typename Entry>
class PrimitiveCache {
 public:
  // Returns the entry for `key`, building it with `make()` (returning Entry) the first time.
  template <typename Make>
  Entry& get(const CacheKey& key, Make&& make) {
    auto it = entries_.find(key);
    if (it == entries_.end()) it = entries_.emplace(key, std::make_unique<Entry>(make())).first;
    return *it->second;
  }
  size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<CacheKey, std::unique_ptr<Entry>, CacheKeyHash> entries_;
};

// One scratchpad shared by all primitives: ops run one after another, so the largest request
// is enough. It only grows during the first step, when every shape is seen for the first time.
class SharedScratchpad {
 public:
  void* get(size_t bytes) {
    if (bytes > capacity_) {
      buffer_.reset(static_cast<char*>(::operator new[](bytes, std::align_val_t{64})));
      capacity_ = bytes;
    }
    return buffer_.get();
  }

 private:
  struct Free {
    void operator()(char* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<char, Free> buffer_;
  size_t capacity_ = 0;
};

// What every oneDNN op needs: the engine, the stream and the shared scratchpad.
struct DnnlContext {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  SharedScratchpad scratchpad;

  // A memory object without storage; ops point it at tensors with set_data_handle per call.
  dnnl::memory unbound(const dnnl::memory::desc& md) const {
    return dnnl::memory(md, engine, DNNL_MEMORY_NONE);
  }
  // Binds a primitive's scratchpad memory to the shared buffer.
  void bind_scratchpad(dnnl::memory& mem) {
    mem.set_data_handle(scratchpad.get(mem.get_desc().get_size()));
  }
};

inline dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

}  // namespace dp::cpu
