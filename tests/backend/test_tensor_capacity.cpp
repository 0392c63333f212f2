// Tensor capacity: a backend's output buffer that shrank to a partial batch must grow back
// into the memory it was given (CudaBackend::output compares against capacity()); a CUDA graph
// captured after a partial batch relies on that, since it may not allocate.
#include <gtest/gtest.h>

#include <memory>

#include "core/error.h"
#include "core/tensor.h"

namespace dp {
namespace {

TEST(TensorCapacity, AViewShrinksAndGrowsBackWithinWhatItWasGiven) {
  auto block = std::shared_ptr<float>(new float[64], std::default_delete<float[]>());
  Tensor t = Tensor::view(block.get(), {16, 4}, DType::f32, Device::cpu, block);
  EXPECT_EQ(t.capacity(), 64 * sizeof(float));
  t.ensure({9, 4});
  EXPECT_EQ(t.bytes(), 36 * sizeof(float));
  EXPECT_EQ(t.capacity(), 64 * sizeof(float)) << "shrinking keeps the capacity";
  t.ensure({16, 4});
  EXPECT_EQ(t.data(), block.get()) << "growing back stays in the same memory";
  EXPECT_THROW(t.ensure({17, 4}), Error) << "a view cannot grow past what it was given";
}

TEST(TensorCapacity, AnOwnedTensorReallocatesOnlyPastItsCapacity) {
  Tensor t;
  t.ensure({8, 8});
  const float* first = t.data();
  t.ensure({2, 8});
  t.ensure({8, 8});
  EXPECT_EQ(t.data(), first);
  t.ensure({9, 8});
  EXPECT_EQ(t.capacity(), 72 * sizeof(float));
}

}  // namespace
}  // namespace dp
