// ForwardBackward with CUDA graphs against eager steps on the same GPU: with deterministic
// cuDNN algorithms (heuristic choice, the same kernels either way) every replayed step must
// equal the eager one bit for bit: loss, hits and every gradient, over several optimizer steps,
// both uploader slots, partial batches (eager), full steps replayed right after a partial one
// (the host-side shapes are then the partial batch's), and an evaluation that regrows the
// layers' buffers (the graphs must then be captured again, not replayed onto released memory).
#include <gtest/gtest.h>

#include "backend/cuda/make_cuda_backend.h"
#include "optim/sgd.h"
#include "step_fixture.h"

namespace dp::test {
namespace {

TEST(CudaGraphStep, ReplaysEqualEagerStepsBitwise) {
  CudaOptions options;
  options.deterministic = true;
  options.benchmark_algorithms = false;
  auto backend = make_cuda_backend(options);
  auto graphed_model = nn::make_model(small_resnet(), *backend);
  auto eager_model = nn::make_model(small_resnet(), *backend);
  int graphed_hooks = 0;
  graphed_model->store().set_grad_ready_hook([&](nn::ParameterStore::Id) { ++graphed_hooks; });
  const int64_t batch = 16;
  ForwardBackward graphed(*graphed_model, *backend, 0.1f, /*use_graphs=*/true, batch);
  ForwardBackward eager(*eager_model, *backend, 0.1f, /*use_graphs=*/false, batch);
  SgdHyper hyper{0.05f, 0.9f, 0.f, 5e-4f, false};
  optim::Sgd graphed_sgd(*backend, graphed_model->params(), graphed_model->grads(), Tensor(),
                         hyper);
  optim::Sgd eager_sgd(*backend, eager_model->params(), eager_model->grads(), Tensor(), hyper);
  auto uploader = backend->make_batch_uploader();
  auto label_uploader = backend->make_batch_uploader();

  int replays = 0;
  for (uint32_t step = 0; step < 9; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    // Partial batches run eagerly; the first one comes before any capture, so that the
    // second (step 4) finds every workspace already sized for it and releases nothing.
    const int64_t n = step == 0 || step == 4 ? 9 : batch;
    Tensor images = uploader->upload(host_images(n, 16, step));
    Tensor labels = label_uploader->upload(host_labels(n, step));
    if (step == 7) {  // an evaluation with a larger batch regrows every layer's buffers
      graphed_model->forward(on_device(*backend, host_images(2 * batch, 16, 99)), false);
      backend->synchronize();
    }
    const int hooks_before = graphed_hooks;
    const int captures_before = graphed.captures();
    const bool replayed = graphed.forward(images, labels);
    // Read before the eager step, which queues its loss into the same backend.
    int64_t correct = 0, eager_correct = 0;
    const float loss = graphed.read_loss(correct);
    ASSERT_FALSE(eager.forward(images, labels));
    EXPECT_EQ(loss, eager.read_loss(eager_correct));
    EXPECT_EQ(correct, eager_correct);
    if (replayed) {
      ++replays;
      EXPECT_EQ(graphed_hooks, hooks_before) << "a replay calls no hook";
    } else {
      graphed.backward();
    }
    eager.backward();
    EXPECT_EQ(replayed, step >= 2 && n == batch) << "graphs after one eager full-size step";
    if (step == 5 || step == 6) {  // the graphs of steps 2 and 3, replayed after a partial one
      EXPECT_EQ(graphed.captures(), captures_before) << "replayed, not captured again";
    }
    ASSERT_EQ(to_host(*backend, graphed_model->grads()), to_host(*backend, eager_model->grads()));
    graphed_sgd.step(0.05f);
    eager_sgd.step(0.05f);
  }
  EXPECT_EQ(replays, 6);
  // One capture per uploader slot, and both again after the evaluation released memory.
  EXPECT_EQ(graphed.captures(), 4);
  EXPECT_EQ(to_host(*backend, graphed_model->params()), to_host(*backend, eager_model->params()));
}

// airbench94's step in BF16 mixed precision, as the GPU recipe runs it (GELU, max pools with
// kernel = stride, the whitening convolution's bias, fixed BN scales, the scaled head): the
// replayed graph equals the eager step bit for bit, step after step.
TEST(CudaGraphStep, Bf16AirbenchReplaysEqualEagerSteps) {
  CudaOptions options;
  options.deterministic = true;
  options.benchmark_algorithms = false;
  options.mixed_bf16 = true;
  auto backend = make_cuda_backend(options);
  nn::ModelSpec spec;
  spec.arch = "airbench94";
  spec.num_classes = 10;
  spec.seed = 3;
  auto graphed_model = nn::make_model(spec, *backend);
  auto eager_model = nn::make_model(spec, *backend);
  const int64_t batch = 32;
  ForwardBackward graphed(*graphed_model, *backend, 0.2f, /*use_graphs=*/true, batch);
  ForwardBackward eager(*eager_model, *backend, 0.2f, /*use_graphs=*/false, batch);
  SgdHyper hyper{0.01f, 0.85f, 0.f, 5e-4f, true};
  optim::Sgd graphed_sgd(*backend, graphed_model->params(), graphed_model->grads(), Tensor(),
                         hyper);
  optim::Sgd eager_sgd(*backend, eager_model->params(), eager_model->grads(), Tensor(), hyper);
  auto uploader = backend->make_batch_uploader();
  auto label_uploader = backend->make_batch_uploader();
  int replays = 0;
  for (uint32_t step = 0; step < 6; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    Tensor images = uploader->upload(host_images(batch, 32, step));
    Tensor labels = label_uploader->upload(host_labels(batch, step));
    const bool replayed = graphed.forward(images, labels);
    int64_t correct = 0, eager_correct = 0;
    const float loss = graphed.read_loss(correct);
    ASSERT_FALSE(eager.forward(images, labels));
    EXPECT_EQ(loss, eager.read_loss(eager_correct));
    EXPECT_EQ(correct, eager_correct);
    if (replayed)
      ++replays;
    else
      graphed.backward();
    eager.backward();
    ASSERT_EQ(to_host(*backend, graphed_model->grads()), to_host(*backend, eager_model->grads()));
    graphed_sgd.step(0.01f);
    eager_sgd.step(0.01f);
  }
  EXPECT_EQ(replays, 5) << "graphs after one eager full-size step";
  EXPECT_EQ(graphed.captures(), 2) << "one graph per uploader slot, then replays only";
  EXPECT_EQ(to_host(*backend, graphed_model->params()), to_host(*backend, eager_model->params()));
}

}  // namespace
}  // namespace dp::test
