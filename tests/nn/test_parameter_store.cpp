// ParameterStore: one flat buffer per kind, offsets in registration order, views that alias
// the flat buffers, lookup by name, the weight-decay mask.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "nn/parameter_store.h"

using namespace dp;
using namespace dp::nn;

class ParameterStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
};

TEST_F(ParameterStoreTest, FlatBuffersAndViews) {
  ParameterStore store(*backend);
  auto conv = store.add_parameter("conv1.weight", {4, 3, 3, 3}, ParamRole::conv_weight);
  auto gamma = store.add_parameter("bn1.weight", {4}, ParamRole::bn_weight);
  auto beta = store.add_parameter("bn1.bias", {4}, ParamRole::bn_bias);
  auto mean = store.add_buffer("bn1.running_mean", {4}, BufferRole::running_mean);
  auto fc_w = store.add_parameter("fc.weight", {2, 4}, ParamRole::linear_weight);
  auto fc_b = store.add_parameter("fc.bias", {2}, ParamRole::linear_bias);
  store.finalize();

  EXPECT_EQ(store.parameter_count(), 108 + 4 + 4 + 8 + 2);
  EXPECT_EQ(store.buffer_element_count(), 4);
  EXPECT_EQ(store.parameter_tensor_count(), 5u);
  EXPECT_EQ(store.buffer_tensor_count(), 1u);
  EXPECT_EQ(store.params().numel(), store.parameter_count());
  EXPECT_EQ(store.grads().numel(), store.parameter_count());

  // Offsets are contiguous in registration order; buffers have their own offsets.
  EXPECT_EQ(store.entry(conv).offset, 0);
  EXPECT_EQ(store.entry(gamma).offset, 108);
  EXPECT_EQ(store.entry(beta).offset, 112);
  EXPECT_EQ(store.entry(fc_w).offset, 116);
  EXPECT_EQ(store.entry(fc_b).offset, 124);
  EXPECT_EQ(store.entry(mean).offset, 0);

  // Views alias the flat buffers.
  EXPECT_EQ(store.param(fc_w).data(), store.params().data() + 116);
  EXPECT_EQ(store.grad(fc_w).data(), store.grads().data() + 116);
  EXPECT_EQ(store.buffer(mean).data(), store.buffers().data());
  EXPECT_EQ(store.param(conv).shape(), (Shape{4, 3, 3, 3}));

  // Writes by name land at the right offset; reads give them back.
  std::vector<float> v = {1.5f, -2.5f};
  store.write("fc.bias", v.data(), v.size());
  EXPECT_EQ(store.params().data()[124], 1.5f);
  EXPECT_EQ(store.params().data()[125], -2.5f);
  std::vector<float> back(2);
  store.read("fc.bias", back.data(), back.size());
  EXPECT_EQ(back, v);
  EXPECT_THROW(store.write("fc.bias", v.data(), 1), dp::Error);
  EXPECT_THROW(store.write("fc.nope", v.data(), 2), dp::UsageError);

  // Lookup and iteration order.
  ASSERT_TRUE(store.find("bn1.running_mean").has_value());
  EXPECT_EQ(*store.find("bn1.running_mean"), mean);
  EXPECT_FALSE(store.find("bn2.weight").has_value());
  std::vector<std::string> names;
  for (const auto& e : store.entries()) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias",
                                             "bn1.running_mean", "fc.weight", "fc.bias"}));
  // Asking for a buffer's id as a parameter is a bug, caught.
  EXPECT_THROW(store.param(mean), dp::Error);
}

TEST_F(ParameterStoreTest, BuffersStartOnSixteenByteBoundaries) {
  // A BN layer's statistics after another's one-element counter: cuDNN's persistent batch norm
  // faults on statistics that are not 16-byte aligned (seen on an H200).
  ParameterStore store(*backend);
  store.add_buffer("bn1.running_mean", {3}, BufferRole::running_mean);
  store.add_buffer("bn1.num_batches_tracked", {1}, BufferRole::num_batches_tracked);
  auto mean2 = store.add_buffer("bn2.running_mean", {8}, BufferRole::running_mean);
  auto count2 = store.add_buffer("bn2.num_batches_tracked", {1}, BufferRole::num_batches_tracked);
  store.add_parameter("bn2.weight", {8}, ParamRole::bn_weight);
  store.finalize();
  EXPECT_EQ(store.entry(mean2).offset, 8);
  EXPECT_EQ(store.entry(count2).offset, 16);
  EXPECT_EQ(store.buffer_element_count(), 17);
  for (const auto& e : store.entries()) {
    if (e.kind != StateKind::buffer) continue;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(store.buffer(*store.find(e.name)).data()) % 16, 0u)
        << e.name;
  }
  // The gaps are zero, so the flat buffer can be averaged and checkpointed as a whole.
  const float* flat = store.buffers().data();
  for (int64_t gap : {3, 5, 6, 7}) EXPECT_EQ(flat[gap], 0.0f) << gap;
}

TEST_F(ParameterStoreTest, DecayMaskExemptsBnAndBias) {
  ParameterStore store(*backend);
  store.add_parameter("conv1.weight", {2, 1, 1, 1}, ParamRole::conv_weight);
  store.add_parameter("bn1.weight", {2}, ParamRole::bn_weight);
  store.add_parameter("bn1.bias", {2}, ParamRole::bn_bias);
  store.add_parameter("fc.weight", {1, 2}, ParamRole::linear_weight);
  store.add_parameter("fc.bias", {1}, ParamRole::linear_bias);
  store.finalize();

  auto host = [&](const Tensor& t) {
    std::vector<float> h(t.numel());
    backend->copy_to_host(t, h.data());
    return h;
  };
  EXPECT_EQ(host(store.make_decay_mask(true)),
            (std::vector<float>{1, 1, 0, 0, 0, 0, 1, 1, 0}));
  EXPECT_EQ(host(store.make_decay_mask(false)), std::vector<float>(9, 1.0f));
}

TEST_F(ParameterStoreTest, RegistrationErrors) {
  ParameterStore store(*backend);
  store.add_parameter("a.weight", {2}, ParamRole::bn_weight);
  EXPECT_THROW(store.add_parameter("a.weight", {2}, ParamRole::bn_weight), dp::Error);
  EXPECT_THROW(store.add_parameter("b.weight", {0}, ParamRole::bn_weight), dp::Error);
  EXPECT_THROW(store.param(0), dp::Error);  // before finalize
  store.finalize();
  EXPECT_THROW(store.add_parameter("c.weight", {2}, ParamRole::bn_weight), dp::Error);
}
