// The pieces of a training step that tests/backend's CPU-vs-CUDA comparisons share: the batch's
// labels and one SGD optimizer per backend over its model.
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "nn/model.h"
#include "optim/sgd.h"

namespace dp::test {

// Labels (stride * i) % 10 for a batch of n: every class of a 10-class model, in a set order.
inline Tensor cycled_labels(int64_t n, int stride) {
  Tensor labels = Tensor::empty({n}, DType::i32);
  for (int64_t i = 0; i < n; ++i)
    labels.data<int32_t>()[i] = static_cast<int32_t>((stride * i) % 10);
  return labels;
}

// One SGD per backend, BN parameters exempt from weight decay (so fixed BN scales, whose
// gradient is 0, stay as they are); step() updates both.
struct TwinSgd {
  TwinSgd(Backend& cpu_backend, nn::Model& cpu_model, Backend& cuda_backend,
          nn::Model& cuda_model, SgdHyper hyper)
      : cpu(cpu_backend, cpu_model.params(), cpu_model.grads(),
            cpu_model.store().make_decay_mask(true), hyper),
        cuda(cuda_backend, cuda_model.params(), cuda_model.grads(),
             cuda_model.store().make_decay_mask(true), hyper) {}
  void step(float lr) {
    cpu.step(lr);
    cuda.step(lr);
  }
  optim::Sgd cpu, cuda;
};

}  // namespace dp::test
