// NCCL communicator on a GPU (label `gpu`; every test is skipped, with the reason, where no
// CUDA device is usable). Buffers are device memory; each rank checks the collectives'
// results and that the GradientReducer averages a device gradient buffer through NCCL.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cuda/runtime_handles.h"
#include "comm/gradient_reducer.h"
#include "comm/nccl_check.h"
#include "comm/nccl_communicator.h"
#include "mpi_test_main.h"
#include "support/gpu_required.h"

namespace dp {
namespace {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const std::vector<T>& host)
      : count_(host.size()), data_(cuda::make_device_array<T>(count_)) {
    DP_CUDA_CHECK(cudaMemcpy(data_.get(), host.data(), sizeof(T) * count_, cudaMemcpyHostToDevice));
  }
  T* get() { return data_.get(); }
  std::vector<T> host() const {
    std::vector<T> out(count_);
    DP_CUDA_CHECK(cudaMemcpy(out.data(), data_.get(), sizeof(T) * count_, cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  size_t count_;
  cuda::DeviceArray<T> data_;  // freed however the constructor or a test ends
};

class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices == 0) {
      const std::string why = status != cudaSuccess ? cudaGetErrorString(status) : "0 devices";
      if (test::gpu_required())
        FAIL() << "DPTRAIN_REQUIRE_GPU=on but no usable CUDA device: " << why;
      GTEST_SKIP() << "no usable CUDA device (" << why
                   << "); the NCCL communicator is tested only on GPU machines";
    }
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    DP_CUDA_CHECK(cudaSetDevice(rank % devices));
    comm_ = make_nccl_communicator(nullptr, 60.0);
  }
  std::unique_ptr<Communicator> comm_;
};

TEST_F(NcclCommunicatorTest, SumsAverageBroadcastGatherAndBarrier) {
  const int world = comm_->size(), rank = comm_->rank();
  EXPECT_EQ(comm_->name(), "nccl");

  DeviceBuffer<float> f(std::vector<float>(1001, float(rank + 1)));
  comm_->allreduce_sum(f.get(), 1001);
  for (float x : f.host()) ASSERT_EQ(x, world * (world + 1) / 2.0f);

  DeviceBuffer<double> d(std::vector<double>(3, 0.5 * rank));
  comm_->allreduce_sum(d.get(), 3);
  for (double x : d.host()) ASSERT_EQ(x, 0.25 * world * (world - 1));

  DeviceBuffer<int64_t> n(std::vector<int64_t>(2, int64_t{1} << 40));
  comm_->allreduce_sum(n.get(), 2);
  for (int64_t x : n.host()) ASSERT_EQ(x, world * (int64_t{1} << 40));

  DeviceBuffer<float> mean(std::vector<float>(77, float(2 * rank)));
  auto pending = comm_->start_allreduce_mean(mean.get(), 77);
  pending->wait();
  EXPECT_TRUE(pending->test());
  for (float x : mean.host()) ASSERT_EQ(x, float(world - 1));

  DeviceBuffer<float> b(std::vector<float>(5, float(rank + 7)));
  comm_->broadcast(b.get(), 5, world - 1);
  for (float x : b.host()) ASSERT_EQ(x, float(world + 6));

  DeviceBuffer<double> mine(std::vector<double>{double(rank), double(-rank)});
  DeviceBuffer<double> all(std::vector<double>(2 * world, 0.0));
  comm_->allgather(mine.get(), 2, all.get());
  std::vector<double> gathered = all.host();
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(gathered[2 * r], r);
    EXPECT_EQ(gathered[2 * r + 1], -r);
  }
  comm_->barrier();
}

TEST_F(NcclCommunicatorTest, ReducerAveragesADeviceGradientBuffer) {
  const int world = comm_->size(), rank = comm_->rank();
  std::vector<GradientSlice> slices = {{0, 0, 5}, {1, 5, 300}, {2, 305, 7}};
  DeviceBuffer<float> grads(std::vector<float>(312, float(rank)));
  GradientReducer reducer(grads.get(), slices, *comm_, 64);
  for (int step = 0; step < 3; ++step) {
    reducer.mark_ready(2);
    reducer.mark_ready(1);
    reducer.mark_ready(0);
    reducer.finish();
  }
  // Averaging an average leaves it unchanged: (world - 1) / 2 everywhere.
  for (float x : grads.host()) ASSERT_EQ(x, (world - 1) / 2.0f);
}

}  // namespace
}  // namespace dp

DP_MPI_TEST_MAIN()
