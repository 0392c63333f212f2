// The host-staged communicator under mpirun (-np 2 and -np 3), with a copier whose "device"
// memory is ordinary host memory (the CUDA copier is two cudaMemcpyAsync calls; this checks
// everything around them): every collective gives the MPI communicator's result, in the
// caller's buffer, with the data really going through the copier; a bucket's buffer keeps its
// local values until its reduction completes; and the gradient reducer over it averages
// exactly. tests/comm/test_ddp_equivalence.cpp runs the same on a GPU (label `gpu`).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "comm/comm_choice.h"
#include "comm/communicator.h"
#include "comm/gradient_reducer.h"
#include "comm/host_staged_communicator.h"
#include "collective_checks.h"

namespace dp {
namespace {

struct CopyCounts {
  size_t to_host_bytes = 0, to_device_bytes = 0, to_host_calls = 0, to_device_calls = 0;
};

class CountingCopier : public DeviceCopier {
 public:
  explicit CountingCopier(CopyCounts& counts) : counts_(counts) {}
  void to_host(const void* device, void* host, size_t bytes) override {
    EXPECT_NE(device, host) << "staging must copy, not alias";
    std::memcpy(host, device, bytes);
    counts_.to_host_bytes += bytes;
    ++counts_.to_host_calls;
  }
  void to_device(const void* host, void* device, size_t bytes) override {
    EXPECT_NE(device, host);
    std::memcpy(device, host, bytes);
    counts_.to_device_bytes += bytes;
    ++counts_.to_device_calls;
  }

 private:
  CopyCounts& counts_;
};

std::unique_ptr<Communicator> staged(CopyCounts& counts) {
  return make_host_staged_communicator(make_mpi_communicator(),
                                       std::make_unique<CountingCopier>(counts));
}

TEST(HostStagedCommunicator, SumsBroadcastAndGatherThroughTheCopier) {
  CopyCounts counts;
  auto comm = staged(counts);
  const int world = comm->size(), rank = comm->rank();
  EXPECT_EQ(comm->name(), "mpi (host-staged)");

  std::vector<float> f = {float(rank), 1.5f};
  std::vector<double> d = {double(rank) * 0.25, -2.0};
  std::vector<int64_t> i = {int64_t(rank) << 40, 7};
  comm->allreduce_sum(f.data(), 2);
  comm->allreduce_sum(d.data(), 2);
  comm->allreduce_sum(i.data(), 2);
  const int64_t rank_sum = int64_t(world) * (world - 1) / 2;
  EXPECT_EQ(f, (std::vector<float>{float(rank_sum), 1.5f * world}));
  EXPECT_EQ(d, (std::vector<double>{rank_sum * 0.25, -2.0 * world}));
  EXPECT_EQ(i, (std::vector<int64_t>{rank_sum << 40, 7 * int64_t(world)}));
  EXPECT_EQ(counts.to_host_bytes, 2 * sizeof(float) + 2 * sizeof(double) + 2 * sizeof(int64_t));
  EXPECT_EQ(counts.to_device_bytes, counts.to_host_bytes);

  // Broadcast: only the root reads its device buffer, only the others write theirs.
  const CopyCounts before = counts;
  testing::expect_broadcast_from_last_rank(*comm, 1000);
  const bool root = rank == world - 1;
  EXPECT_EQ(counts.to_host_bytes - before.to_host_bytes, root ? 4000u : 0u);
  EXPECT_EQ(counts.to_device_bytes - before.to_device_bytes, root ? 0u : 4000u);

  testing::expect_allgather_in_rank_order(*comm);
  comm->barrier();
}

TEST(HostStagedCommunicator, MeanLandsInTheDeviceBufferOnlyWhenComplete) {
  CopyCounts counts;
  auto comm = staged(counts);
  const int world = comm->size(), rank = comm->rank();
  // `first` is `world` on rank 0 and 0 elsewhere: its mean, 1, is no rank's own value, so every
  // rank can tell an early write.
  const float own = rank == 0 ? float(world) : 0.f;
  std::vector<float> first(300, own), second(7, float(4 * rank));
  // Two reductions in flight at once, each with its own staging buffer.
  auto a = comm->start_allreduce_mean(first.data(), 300);
  auto b = comm->start_allreduce_mean(second.data(), 7);
  if (world > 1) {
    EXPECT_EQ(first[0], own) << "written before completion";
  }
  EXPECT_EQ(counts.to_device_calls, 0u);
  while (!b->test()) {
  }
  a->wait();
  for (float x : first) ASSERT_EQ(x, 1.f);
  for (float x : second) ASSERT_EQ(x, float(2 * (world - 1)));
  EXPECT_EQ(counts.to_host_bytes, 307 * sizeof(float));
  EXPECT_EQ(counts.to_device_bytes, 307 * sizeof(float));
  EXPECT_TRUE(a->test());  // done stays done, and copies nothing more
  EXPECT_EQ(counts.to_device_calls, 2u);
}

TEST(HostStagedCommunicator, GradientReducerAveragesExactlyStepAfterStep) {
  CopyCounts counts;
  auto comm = staged(counts);
  const int world = comm->size(), rank = comm->rank();
  const std::vector<GradientSlice> slices = {{0, 0, 333}, {1, 333, 65}, {2, 398, 4099}, {3, 4497, 9}};
  const int64_t total = 4506;
  std::vector<float> grads(total);
  GradientReducer reducer(grads.data(), slices, *comm, 2000 * 4);
  ASSERT_GT(reducer.bucket_count(), 1u);
  for (uint64_t step = 0; step < 3; ++step) {
    // Values k/8: sums are exact in float whatever order MPI adds in.
    auto values = [&](int r) {
      std::mt19937_64 rng(step * 100 + r);
      std::vector<float> v(total);
      for (auto& x : v) x = float(int64_t(rng() % 201) - 100) / 8.0f;
      return v;
    };
    const std::vector<float> mine = values(rank);
    std::copy(mine.begin(), mine.end(), grads.begin());  // the reducer holds grads.data()
    std::vector<float> expected(total, 0.0f);
    for (int r = 0; r < world; ++r) {
      const auto v = values(r);
      for (int64_t k = 0; k < total; ++k) expected[k] += v[k];
    }
    for (auto& x : expected) x *= 1.0f / float(world);
    for (size_t s = slices.size(); s-- > 0;) reducer.mark_ready(slices[s].id);
    reducer.finish();
    ASSERT_EQ(grads, expected) << "step " << step;
    // Each gradient went to the host and back exactly once this step.
    EXPECT_EQ(counts.to_host_bytes, (step + 1) * total * sizeof(float));
    EXPECT_EQ(counts.to_device_bytes, (step + 1) * total * sizeof(float));
  }
}

#ifdef DPTRAIN_WITH_NCCL
TEST(CommChoice, MpiWithGpuGradientsIsHostStaged) {
  // Building the communicator touches no GPU: the copier calls CUDA only when it copies.
  const CommChoice choice = choose_gradient_communicator(CommRequest::mpi, Device::cuda);
  EXPECT_EQ(choice.comm->name(), "mpi (host-staged)");
  EXPECT_NE(choice.reason.find("staged through host memory"), std::string::npos) << choice.reason;
}
#endif

}  // namespace
}  // namespace dp
