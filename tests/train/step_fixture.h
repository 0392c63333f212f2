// Two identical models on one backend, one trained through ForwardBackward and one by calling
// the model's passes directly, so a test can require the two to agree step for step.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "backend/backend.h"
#include "nn/model.h"
#include "train/forward_backward.h"

namespace dp::test {

inline Tensor host_images(int64_t n, int64_t side, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  Tensor t = Tensor::empty({n, side, side, 3});
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = normal(gen);
  return t;
}

inline Tensor host_labels(int64_t n, uint32_t seed) {
  Tensor t = Tensor::empty({n}, DType::i32);
  for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = static_cast<int32_t>((i * 7 + seed) % 10);
  return t;
}

// A host tensor on the backend's device (itself on a host backend).
inline Tensor on_device(Backend& backend, const Tensor& host) {
  if (backend.device() == Device::cpu) return host;
  Tensor d = backend.allocate(host.shape(), host.dtype());
  backend.copy_from_host(host.data<void>(), d);
  return d;
}

inline std::vector<float> to_host(Backend& backend, const Tensor& t) {
  std::vector<float> v(t.numel());
  backend.copy_to_host(t, v.data());
  return v;
}

inline nn::ModelSpec small_resnet() {
  nn::ModelSpec spec;
  spec.arch = "resnet8";
  spec.num_classes = 10;
  spec.seed = 11;
  return spec;
}

}  // namespace dp::test
