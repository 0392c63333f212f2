// GradientReducer and MPI communicator under mpirun (-np 2 and -np 3): the bucketed average
// must equal the plain sum / world size for odd-sized parameters and every bucket size,
// including a bucket cap smaller than any single parameter, whatever order backward reports
// gradients in (it differs between ranks here on purpose).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "comm/comm_choice.h"
#include "comm/communicator.h"
#include "comm/gradient_reducer.h"
#include "comm/mpi_session.h"
#include "collective_checks.h"
#include "mpi_test_main.h"

namespace dp {
namespace {

// Values k/8 with small integer k: sums are exact in float, so the comparison can be exact
// whatever order MPI adds in.
std::vector<float> rank_values(int rank, int64_t n, uint64_t trial) {
  std::mt19937_64 rng(trial * 1000 + rank);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(static_cast<int64_t>(rng() % 201) - 100) / 8.0f;
  return v;
}

// Parameters of odd sizes laid out back to back, ids 0..n-1 (as ParameterStore ids would be,
// but with a gap id in between to mimic buffers interleaved with parameters).
std::vector<GradientSlice> odd_layout(int64_t& total) {
  const int64_t sizes[] = {7, 1, 333, 65, 4099, 3, 17, 1025, 9};
  std::vector<GradientSlice> slices;
  total = 0;
  size_t id = 0;
  for (int64_t s : sizes) {
    slices.push_back({id, total, s});
    id += 2;  // ids need not be dense
    total += s;
  }
  return slices;
}

class ReducerTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(ReducerTest, BucketedMeanEqualsSumOverWorld) {
  auto comm = make_mpi_communicator();
  const int world = comm->size(), rank = comm->rank();
  int64_t total = 0;
  std::vector<GradientSlice> slices = odd_layout(total);
  const int64_t bucket_bytes = GetParam();

  std::vector<float> grads(total);
  GradientReducer reducer(grads.data(), slices, *comm, bucket_bytes);
  EXPECT_GE(reducer.bucket_count(), 1u);
  for (uint64_t trial = 0; trial < 3; ++trial) {  // several steps reuse one reducer
    const std::vector<float> values = rank_values(rank, total, trial);
    std::copy(values.begin(), values.end(), grads.begin());  // the reducer holds grads.data()
    std::vector<float> expected(total, 0.0f);
    for (int r = 0; r < world; ++r) {
      auto v = rank_values(r, total, trial);
      for (int64_t i = 0; i < total; ++i) expected[i] += v[i];
    }
    for (auto& x : expected) x *= 1.0f / static_cast<float>(world);

    // Backward order differs by rank and trial; the reducer must still match collectives.
    std::vector<size_t> order(slices.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(trial * 7 + rank));
    for (size_t i : order) reducer.mark_ready(slices[i].id);
    ReductionTimes times = reducer.finish();
    EXPECT_GE(times.hidden, 0.0);
    EXPECT_GE(times.comm, times.hidden);
    ASSERT_EQ(grads, expected) << "bucket bytes " << bucket_bytes << ", trial " << trial;
  }
}

// 1 byte: smaller than any parameter (each gets its own bucket); 40 bytes; one parameter's
// worth; a few; everything in one bucket (25 MB, the default).
INSTANTIATE_TEST_SUITE_P(BucketSizes, ReducerTest,
                         ::testing::Values(1, 40, 4 * 333, 4 * 2000, 4 * 5000,
                                           GradientReducer::kDefaultBucketBytes));

TEST(GradientReducer, BucketsTakeParametersInReverseOrderUpToTheCap) {
  auto comm = make_mpi_communicator();
  int64_t total = 0;
  std::vector<GradientSlice> slices = odd_layout(total);
  std::vector<float> grads(total);
  // Cap of 1100 floats over the reversed sizes 9 1025 17 3 | 4099 | 65 333 1 7.
  GradientReducer reducer(grads.data(), slices, *comm, 1100 * 4);
  ASSERT_EQ(reducer.bucket_count(), 3u);
  EXPECT_EQ(reducer.bucket_elements(0), 9 + 1025 + 17 + 3);
  EXPECT_EQ(reducer.bucket_elements(1), 4099);  // larger than the cap: alone
  EXPECT_EQ(reducer.bucket_elements(2), 65 + 333 + 1 + 7);
  GradientReducer single(grads.data(), slices, *comm, 1);
  EXPECT_EQ(single.bucket_count(), slices.size());
}

TEST(GradientReducer, FinishReducesBucketsNeverMarkedReady) {
  // A model without the grad-ready hook (or a parameter unused this step) still gets every
  // gradient averaged: finish() starts whatever has not started.
  auto comm = make_mpi_communicator();
  int64_t total = 0;
  std::vector<GradientSlice> slices = odd_layout(total);
  std::vector<float> grads(total, static_cast<float>(comm->rank()));
  GradientReducer reducer(grads.data(), slices, *comm, 64);
  reducer.mark_ready(slices.back().id);  // only the last parameter reported
  reducer.finish();
  const float mean = (comm->size() - 1) / 2.0f;
  for (float g : grads) ASSERT_EQ(g, mean);
}

TEST(GradientReducer, LeavesGapsBetweenSlicesUntouched) {
  auto comm = make_mpi_communicator();
  // Two parameters with a gap of 5 elements between them.
  std::vector<GradientSlice> slices = {{0, 0, 10}, {1, 15, 10}};
  std::vector<float> grads(25, 1.0f + comm->rank());
  GradientReducer reducer(grads.data(), slices, *comm, 1 << 20);
  reducer.mark_ready(1);
  reducer.mark_ready(0);
  reducer.finish();
  const float mean = 1.0f + (comm->size() - 1) / 2.0f;
  for (int i = 0; i < 25; ++i)
    ASSERT_EQ(grads[i], (i >= 10 && i < 15) ? 1.0f + comm->rank() : mean) << "element " << i;
}

TEST(GradientReducer, RejectsAGradientReportedTwiceOrUnknown) {
  auto comm = make_mpi_communicator();
  std::vector<float> grads(4, 0.0f);
  // One parameter per bucket. Every rank makes the same calls, and the checks fire before
  // anything is launched, so the collectives still match and finish() completes normally.
  GradientReducer reducer(grads.data(), {{0, 0, 2}, {1, 2, 2}}, *comm, 4);
  EXPECT_THROW(reducer.mark_ready(7), Error);
  reducer.mark_ready(1);
  EXPECT_THROW(reducer.mark_ready(1), Error);
  reducer.finish();
}

TEST(MpiCommunicator, AllgatherBroadcastAndMean) {
  auto comm = make_mpi_communicator();
  const int world = comm->size(), rank = comm->rank();
  testing::expect_allgather_in_rank_order(*comm);
  testing::expect_broadcast_from_last_rank(*comm, 5);

  std::vector<float> mean(3, float(2 * rank));
  auto pending = comm->start_allreduce_mean(mean.data(), 3);
  while (!pending->test()) {
  }
  for (float x : mean) EXPECT_EQ(x, float(world - 1));
}

TEST(CommChoice, RefusesNcclForHostGradientsAndUnknownValues) {
  try {
    choose_gradient_communicator(CommRequest::nccl, Device::cpu);
    FAIL() << "nccl with CPU gradients was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--comm"), std::string::npos) << e.what();
  }
  try {
    parse_enum_option<CommRequest>("comm", "gloo");
    FAIL() << "--comm gloo was accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "option --comm: 'gloo' must be auto, nccl or mpi");
  }
  EXPECT_EQ(choose_gradient_communicator(CommRequest::automatic, Device::cpu).comm->name(), "mpi");
  EXPECT_EQ(choose_gradient_communicator(CommRequest::mpi, Device::cpu).comm->name(), "mpi");
}

TEST(SlurmLaunchCheck, AgreesOrNamesTheMismatch) {
  EXPECT_FALSE(slurm_launch_mismatch(nullptr, nullptr, 1, 0));  // not under Slurm
  EXPECT_FALSE(slurm_launch_mismatch("4", "2", 4, 2));
  // srun without MPI support: 4 singletons, each MPI rank 0 of 1.
  auto m = slurm_launch_mismatch("4", "2", 1, 0);
  ASSERT_TRUE(m);
  EXPECT_NE(m->find("task 2 of 4"), std::string::npos) << *m;
  EXPECT_NE(m->find("rank 0 of 1"), std::string::npos) << *m;
  EXPECT_TRUE(slurm_launch_mismatch("4", "1", 4, 2));  // ranks permuted
}

}  // namespace
}  // namespace dp

DP_MPI_TEST_MAIN()
