// The data-parallel contract, under mpirun with W ranks (-np 2 and -np 3): W ranks with batch
// B/W each, gradients averaged by the bucketed GradientReducer, reproduce one rank with batch
// B step for step — losses and weights within float tolerance — on a dataset whose size (203)
// no world size divides; and after every step the weights are bit-identical on all ranks.
//
// Each rank also trains the one-rank reference itself, so the comparison needs no files.
//
// Built twice: on the CPU backend (label `mpi`), and with DP_EQUIVALENCE_ON_CUDA on the CUDA
// backend (label `gpu`), where all ranks share one GPU and the gradients travel through the
// host-staged MPI communicator (`--comm mpi` with GPU gradients; NCCL refuses two ranks on
// one device). Without a usable GPU that build skips, visibly.
// Why the batches match: the sampler pads the epoch's permutation p to W * ceil(N / W) and
// rank r takes p[r], p[r + W], ...; so rank r's j-th sample of step s is p[s*B + j*W + r] and
// the W local batches of step s are exactly p[s*B .. s*B + B) — the reference's batch s.
// Only the epoch's last, partial step differs by design (the padding repeats samples, as in
// PyTorch DDP), so both runs skip it; the test checks the index sets match on every step.
//
// The net is conv, conv (stride 2), global average pool, linear. It has no BatchNorm, since
// BN in train mode normalises with per-rank batch statistics (which DDP keeps local), and no
// max pool or ReLU: their kinks turn a 1e-7 rounding difference (the allreduce adds in another
// order) into a different argmax now and then, and the runs would part for a reason that has
// nothing to do with data parallelism. The loss is still non-linear in the weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "equivalence_fixture.h"
#include "mpi_test_main.h"
#include "nn/conv2d.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/pooling.h"  // GlobalAvgPool

namespace dp {
namespace {

using namespace equivalence;

constexpr int64_t kSide = 8;
constexpr int kEpochs = 2;
constexpr uint64_t kSeed = 11;
constexpr float kLr = 0.05f;
constexpr DatasetSpec kDataset{.name = "ddp-equivalence", .test = 20, .side = kSide, .seed = 5};

class TinyNet : public nn::Model {
 public:
  TinyNet(const nn::ModelSpec& spec, Backend& backend) : nn::Model(spec, backend) {
    nn::ParameterStore& s = *store_;
    conv1_ = std::make_unique<nn::Conv2d>(s, "conv1", spec.in_channels, 8, 3, 1, 1);
    conv1_->set_input_grad(false);
    conv2_ = std::make_unique<nn::Conv2d>(s, "conv2", 8, 16, 3, 2, 1);
    gap_ = std::make_unique<nn::GlobalAvgPool>(backend);
    fc_ = std::make_unique<nn::Linear>(s, "fc", 16, spec.num_classes);
    s.finalize();
    nn::init_torchvision(s, spec.seed);
  }
  const Tensor& forward(const Tensor& x, bool train) override {
    const Tensor& a = conv1_->forward(x, train);
    return fc_->forward(gap_->forward(conv2_->forward(a, train), train), train);
  }
  void backward(const Tensor& dlogits) override {
    conv1_->backward(conv2_->backward(gap_->backward(fc_->backward(dlogits))));
  }
  void set_input_grad(bool) override {}
  const Tensor& input_grad() const override { return none_; }

 private:
  std::unique_ptr<nn::Conv2d> conv1_, conv2_;
  std::unique_ptr<nn::GlobalAvgPool> gap_;
  std::unique_ptr<nn::Linear> fc_;
  Tensor none_;
};

std::unique_ptr<nn::Model> tiny_net(Backend& backend) {
  nn::ModelSpec spec;
  spec.num_classes = kClasses;
  spec.in_channels = kChannels;
  spec.seed = kSeed;
  return std::make_unique<TinyNet>(spec, backend);
}

TEST(DataParallel, MatchesOneRankWithTheWholeBatchStepForStep) {
  auto comm = make_mpi_communicator();
  const int world = comm->size(), rank = comm->rank();
  ASSERT_EQ(kGlobalBatch % world, 0) << "run with a world size dividing " << kGlobalBatch;
  ASSERT_NE(kSamples % world, 0) << "the test wants a dataset size the world does not divide";
  const int64_t local_batch = kGlobalBatch / world;

  if (const auto why = no_gpu_reason()) GTEST_SKIP() << *why;
  BackendUnderTest under_test = make_backend_under_test();
  Backend& backend = *under_test.backend;
  const DatasetFile file(kDataset, rank);
  data::HDF5Dataset set(file.path, "train");
  Shard reference_shard(set, 1, 0, kGlobalBatch, kSeed);
  Shard my_shard(set, world, rank, local_batch, kSeed);
  Replica reference(backend, tiny_net(backend), kLr);
  Replica parallel(backend, tiny_net(backend), kLr);
  // 2 KiB buckets: several buckets, so allreduces really start during backward.
  auto reducer = reducer_for(*parallel.model, *under_test.gradient_comm, 2048);
  ASSERT_GT(reducer->bucket_count(), 2u);

  const int64_t full_steps = kSamples / kGlobalBatch;
  int steps_checked = 0;
  double worst_weight_diff = 0, worst_loss_diff = 0;
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    reference_shard.loader->start_epoch(epoch);
    my_shard.loader->start_epoch(epoch);
    for (int64_t step = 0; step < full_steps; ++step) {
      const data::HostBatch* ref_batch = reference_shard.loader->next();
      const data::HostBatch* my_batch = my_shard.loader->next();
      ASSERT_TRUE(ref_batch && my_batch);
      ASSERT_EQ(my_batch->size(), local_batch);

      // The W local batches together are the reference's batch.
      std::vector<double> mine(my_batch->indices.begin(), my_batch->indices.end());
      std::vector<double> all(kGlobalBatch);
      comm->allgather(mine.data(), local_batch, all.data());
      std::vector<double> expected(ref_batch->indices.begin(), ref_batch->indices.end());
      std::sort(all.begin(), all.end());
      std::sort(expected.begin(), expected.end());
      ASSERT_EQ(all, expected) << "epoch " << epoch << " step " << step;

      const float ref_loss = reference.forward_backward(backend, *ref_batch);
      reference.sgd->step(kLr);

      double loss = parallel.forward_backward(backend, *my_batch);
      reducer->finish();
      parallel.sgd->step(kLr);
      comm->allreduce_sum(&loss, 1);
      loss /= world;  // equal local batches: the mean of the means is the global mean

      const double loss_diff = std::abs(loss - ref_loss);
      worst_loss_diff = std::max(worst_loss_diff, loss_diff);
      ASSERT_LE(loss_diff, 1e-5 * std::max(1.0, std::abs(double(ref_loss))))
          << "epoch " << epoch << " step " << step << ": loss " << loss << " vs " << ref_loss;

      const std::vector<float> w = to_host(backend, parallel.model->params());
      const double weight_diff = max_abs_diff(w, to_host(backend, reference.model->params()));
      worst_weight_diff = std::max(worst_weight_diff, weight_diff);
      ASSERT_LE(weight_diff, 2e-5) << "epoch " << epoch << " step " << step;

      // Every rank holds the same weights, bit for bit.
      const std::vector<double> sums = checksums_of_every_rank(*comm, w);
      for (int r = 1; r < world; ++r)
        ASSERT_EQ(sums[r], sums[0]) << "rank " << r << " weights differ at step " << step;
      ++steps_checked;
    }
  }
  EXPECT_GE(steps_checked, 20);
  if (rank == 0)
    std::printf("world %d: %d steps, worst |loss diff| %.3g, worst |weight diff| %.3g\n", world,
                steps_checked, worst_loss_diff, worst_weight_diff);
}

}  // namespace
}  // namespace dp

DP_MPI_TEST_MAIN()
