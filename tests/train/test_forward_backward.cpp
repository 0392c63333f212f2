// ForwardBackward on the CPU backend: no graphs there, so every step runs eagerly, reports
// every gradient through the grad-ready hook and equals the model's own passes bit for bit.
#include <gtest/gtest.h>

#include "step_fixture.h"

namespace dp::test {
namespace {

TEST(ForwardBackward, HostBackendRunsEagerlyAndMatchesTheModelsPasses) {
  auto backend = make_cpu_backend(1);
  auto stepped = nn::make_model(small_resnet(), *backend);
  auto direct = nn::make_model(small_resnet(), *backend);
  int hooks = 0;
  stepped->store().set_grad_ready_hook([&](nn::ParameterStore::Id) { ++hooks; });
  ForwardBackward step(*stepped, *backend, 0.1f, /*use_graphs=*/true, /*full_batch=*/8);
  int parameters = 0;
  for (const nn::StateEntry& e : stepped->store().entries())
    parameters += e.kind == nn::StateKind::parameter ? 1 : 0;
  for (uint32_t i = 0; i < 3; ++i) {
    const int64_t n = i == 2 ? 5 : 8;  // a partial last batch too
    Tensor images = host_images(n, 16, i), labels = host_labels(n, i);
    ASSERT_FALSE(step.forward(images, labels)) << "the CPU backend has no graphs";
    int64_t correct = 0, direct_correct = 0;
    const float loss = step.read_loss(correct);
    Tensor dlogits;
    const float direct_loss = backend->softmax_cross_entropy(direct->forward(images, true), labels,
                                                             0.1f, dlogits, direct_correct);
    EXPECT_EQ(loss, direct_loss);
    EXPECT_EQ(correct, direct_correct);
    step.backward();
    direct->backward(dlogits);
    EXPECT_EQ(to_host(*backend, stepped->grads()), to_host(*backend, direct->grads()));
    EXPECT_EQ(hooks, parameters * static_cast<int>(i + 1)) << "one hook call per parameter";
  }
  EXPECT_EQ(step.captures(), 0);
}

}  // namespace
}  // namespace dp::test
