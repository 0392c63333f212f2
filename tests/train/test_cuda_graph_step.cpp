// ForwardBackward with CUDA graphs against eager steps on the same GPU: with deterministic
// cuDNN algorithms (heuristic choice, the same kernels either way) every replayed step must
// equal the eager one bit for bit: loss, hits and every gradient, over several optimizer steps,
// both uploader slots, partial batches (eager), full steps replayed right after a partial one
// (the host-side shapes are then the partial batch's), and an evaluation that regrows the
// layers' buffers (the graphs must then be captured again, not replayed onto released memory).
#include <gtest/gtest.h>

#include <utility>

#include "backend/cuda/make_cuda_backend.h"
#include "optim/sgd.h"
#include "step_fixture.h"

namespace dp::test {
namespace {

// A model trained twice on one CUDA backend with deterministic, heuristically chosen cuDNN
// algorithms (the same kernels either way): through captured graphs and eagerly, with the same
// SGD, so that every step can be compared bit for bit.
struct GraphedAndEager {
  GraphedAndEager(CudaOptions options, const nn::ModelSpec& spec, float smoothing, int64_t batch,
                  SgdHyper hyper, nn::ParameterStore::GradReadyHook graphed_hook = nullptr)
      : backend(make_cuda_backend(deterministic(options))),
        graphed_model(with_hook(nn::make_model(spec, *backend), std::move(graphed_hook))),
        eager_model(nn::make_model(spec, *backend)),
        graphed(*graphed_model, *backend, smoothing, /*use_graphs=*/true, batch),
        eager(*eager_model, *backend, smoothing, /*use_graphs=*/false, batch),
        graphed_sgd(*backend, graphed_model->params(), graphed_model->grads(), Tensor(), hyper),
        eager_sgd(*backend, eager_model->params(), eager_model->grads(), Tensor(), hyper),
        uploader(backend->make_batch_uploader()),
        label_uploader(backend->make_batch_uploader()) {}

  // A batch on the device through the two uploaders' alternating slots, as the trainer's
  // loader hands it over: images and labels.
  std::pair<Tensor, Tensor> upload(const Tensor& host_batch, const Tensor& host_labels) {
    return {uploader->upload(host_batch), label_uploader->upload(host_labels)};
  }
  // Both forward passes and losses on one uploaded batch: loss and hits equal. Returns
  // whether the graphed step was a replay, which ran its backward too.
  bool forward(const std::pair<Tensor, Tensor>& batch) {
    const auto& [images, labels] = batch;
    const bool replayed = graphed.forward(images, labels);
    // Read before the eager step, which queues its loss into the same backend.
    int64_t correct = 0, eager_correct = 0;
    const float loss = graphed.read_loss(correct);
    EXPECT_FALSE(eager.forward(images, labels));
    EXPECT_EQ(loss, eager.read_loss(eager_correct));
    EXPECT_EQ(correct, eager_correct);
    return replayed;
  }
  // Both backward passes (the graphed one where not replayed): every gradient equal; then
  // each model's SGD update.
  void backward_and_update(bool replayed, float lr) {
    if (!replayed) graphed.backward();
    eager.backward();
    EXPECT_EQ(to_host(*backend, graphed_model->grads()), to_host(*backend, eager_model->grads()));
    graphed_sgd.step(lr);
    eager_sgd.step(lr);
  }

  static CudaOptions deterministic(CudaOptions options) {
    options.deterministic = true;
    options.benchmark_algorithms = false;
    return options;
  }
  static std::unique_ptr<nn::Model> with_hook(std::unique_ptr<nn::Model> model,
                                              nn::ParameterStore::GradReadyHook hook) {
    if (hook) model->store().set_grad_ready_hook(std::move(hook));
    return model;
  }

  std::unique_ptr<Backend> backend;
  std::unique_ptr<nn::Model> graphed_model, eager_model;
  ForwardBackward graphed, eager;
  optim::Sgd graphed_sgd, eager_sgd;
  std::unique_ptr<BatchUploader> uploader, label_uploader;
};

TEST(CudaGraphStep, ReplaysEqualEagerStepsBitwise) {
  int graphed_hooks = 0;
  const int64_t batch = 16;
  GraphedAndEager twin(CudaOptions{}, small_resnet(), 0.1f, batch,
                       SgdHyper{0.05f, 0.9f, 0.f, 5e-4f, false},
                       [&](nn::ParameterStore::Id) { ++graphed_hooks; });
  int replays = 0;
  for (uint32_t step = 0; step < 9; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    // Partial batches run eagerly; the first one comes before any capture, so that the
    // second (step 4) finds every workspace already sized for it and releases nothing.
    const int64_t n = step == 0 || step == 4 ? 9 : batch;
    const auto uploaded = twin.upload(host_images(n, 16, step), host_labels(n, step));
    if (step == 7) {  // an evaluation with a larger batch regrows every layer's buffers
      twin.graphed_model->forward(on_device(*twin.backend, host_images(2 * batch, 16, 99)), false);
      twin.backend->synchronize();
    }
    const int hooks_before = graphed_hooks;
    const int64_t captures_before = twin.graphed.captures();
    const bool replayed = twin.forward(uploaded);
    if (replayed) {
      ++replays;
      EXPECT_EQ(graphed_hooks, hooks_before) << "a replay calls no hook";
    }
    EXPECT_EQ(replayed, step >= 2 && n == batch) << "graphs after one eager full-size step";
    if (step == 5 || step == 6) {  // the graphs of steps 2 and 3, replayed after a partial one
      EXPECT_EQ(twin.graphed.captures(), captures_before) << "replayed, not captured again";
    }
    twin.backward_and_update(replayed, 0.05f);
  }
  EXPECT_EQ(replays, 6);
  // One capture per uploader slot, and both again after the evaluation released memory.
  EXPECT_EQ(twin.graphed.captures(), 4);
  EXPECT_EQ(to_host(*twin.backend, twin.graphed_model->params()),
            to_host(*twin.backend, twin.eager_model->params()));
}

// airbench94's step in BF16 mixed precision, as the GPU recipe runs it (GELU, max pools with
// kernel = stride, the whitening convolution's bias, fixed BN scales, the scaled head): the
// replayed graph equals the eager step bit for bit, step after step.
TEST(CudaGraphStep, Bf16AirbenchReplaysEqualEagerSteps) {
  CudaOptions options;
  options.mixed_bf16 = true;
  nn::ModelSpec spec;
  spec.arch = "airbench94";
  spec.num_classes = 10;
  spec.seed = 3;
  const int64_t batch = 32;
  GraphedAndEager twin(options, spec, 0.2f, batch, SgdHyper{0.01f, 0.85f, 0.f, 5e-4f, true});
  int replays = 0;
  for (uint32_t step = 0; step < 6; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    const bool replayed =
        twin.forward(twin.upload(host_images(batch, 32, step), host_labels(batch, step)));
    replays += replayed ? 1 : 0;
    twin.backward_and_update(replayed, 0.01f);
  }
  EXPECT_EQ(replays, 5) << "graphs after one eager full-size step";
  EXPECT_EQ(twin.graphed.captures(), 2) << "one graph per uploader slot, then replays only";
  EXPECT_EQ(to_host(*twin.backend, twin.graphed_model->params()),
            to_host(*twin.backend, twin.eager_model->params()));
}

}  // namespace
}  // namespace dp::test
