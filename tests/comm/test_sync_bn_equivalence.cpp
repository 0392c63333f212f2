// --sync-bn's contract, under mpirun with W ranks (-np 2 and -np 3). First one BatchNorm2d
// layer over unequal shards against the same layer over the whole batch; then with SyncBatchNorm
// (nn/sync_batchnorm.h), W ranks with batch B/W each reproduce one rank with batch B step for
// step on a network WITH BatchNorm and ReLU (resnet8: fused BN+ReLU, option-A shortcuts, and
// on AVX-512 the reference's fused BN+add+ReLU, which the sync path replaces by its two ops;
// 16x16 images, so the 32-channel stage runs on nChw16c): every step's loss, averaged
// gradients, updated weights and BN running statistics agree within float rounding, and after
// every step the weights and the BN buffers are bit-identical on all ranks. Without the
// exchange (plain DDP) the first step's running statistics already differ from the one-rank
// run by far more than the tolerance, and differ between ranks: the comparison can tell.
//
// Step for step: each step starts the W-rank model from the one-rank model's state (weights,
// BN buffers, momentum; the same bits on every rank) and compares one step. Left to run free,
// the two trajectories part after a few steps whatever the implementation: resnet8 on random
// labels with batch 6 at LR 0.05 is chaotic, and a 1e-7 difference that moves a ReLU input
// across zero grows about 3x per step (measured: 1e-7 until step 2, 6e-6 at step 3, 4e-4 at
// step 5; with LR 0.002 the same from step 12), so a free-running bar would test the
// dynamics, not the data parallelism.
//
// The padded last step: 203 samples, B = 6. DistributedSampler pads the epoch's permutation
// to W * ceil(203 / W) = 204 by repeating its first sample, so the last step of every rank is
// full and one sample appears twice in it. The reference is given exactly the samples the W
// ranks see: every process also loads every other rank's shard and concatenates the W local
// batches of each step into the reference's batch (augmentation draws are functions of
// (seed, epoch, sample index), so a repeated sample is the same image). A 1-rank sampler
// would instead leave a last step of 5 samples: a different batch, not a rounding difference.
//
// Tolerances: the two runs add the same terms in different orders (a BN channel's statistics
// over W partial sums in double, gradients over the bucketed allreduce, convolutions over
// other batch sizes): a relative 1e-7 per operation, a few 1e-7 through the net (the printed
// line gives the measured worst). The forward is continuous, so every step's loss (1e-6
// relative) and BN running statistics (1e-6 absolute) must agree that closely. The gradient
// is not: where a ReLU input lies within rounding of zero, one run masks its gradient and the
// other passes it (the reference's oneDNN fused ReLU and the sync path round the BN output
// differently), and that one element moves every gradient upstream of it, by up to a few 1e-3
// of the largest gradient (measured: 1-2 such steps in 34, all in a fused BN+ReLU whose bias
// gradient takes the element's whole dy). So gradients (1e-5 relative to their largest
// element) and weights (1e-6 absolute) must agree that closely on all but 3 steps, and within
// 2e-2 and 1e-3 on those; a wrong reduction (a missing cross-rank sum, a count or a scale off)
// misses the tight bars on every step.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "comm/communicator.h"
#include "equivalence_fixture.h"
#include "mpi_test_main.h"
#include "nn/batchnorm2d.h"
#include "nn/model.h"
#include "train/comm_stats_exchange.h"

namespace dp {
namespace {

using namespace equivalence;

constexpr int64_t kSide = 16;
constexpr uint64_t kSeed = 13;
constexpr float kLr = 0.05f;
constexpr DatasetSpec kDataset{.name = "sync-bn-equivalence", .test = 12, .side = kSide, .seed = 7};

// The W local batches of one step, in rank order, as one batch.
data::HostBatch concatenated(const std::vector<const data::HostBatch*>& parts) {
  int64_t total = 0;
  for (const auto* p : parts) total += p->size();
  const Tensor& first = parts[0]->images;
  data::HostBatch out;
  out.images = Tensor::empty({total, first.dim(1), first.dim(2), first.dim(3)});
  out.labels = Tensor::empty({total}, DType::i32);
  int64_t at = 0;
  for (const auto* p : parts) {
    std::memcpy(out.images.data<char>() + at * (first.bytes() / first.dim(0)),
                p->images.data<char>(), p->images.bytes());
    std::memcpy(out.labels.data<int32_t>() + at, p->labels.data<int32_t>(), p->labels.bytes());
    out.indices.insert(out.indices.end(), p->indices.begin(), p->indices.end());
    at += p->size();
  }
  return out;
}

// resnet8, the network under test.
std::unique_ptr<nn::Model> resnet8(Backend& backend) {
  nn::ModelSpec spec;
  spec.arch = "resnet8";
  spec.num_classes = kClasses;
  spec.in_channels = kChannels;
  spec.seed = kSeed;
  return nn::make_model(spec, backend);
}

// max |a - b| / max |ref|.
double relative_max_error(const std::vector<float>& a, const std::vector<float>& ref) {
  double scale = 0;
  for (float v : ref) scale = std::max(scale, double(std::abs(v)));
  return max_abs_diff(a, ref) / std::max(scale, 1e-30);
}

// `to` takes `from`'s weights, BN buffers and momentum (the step count is the same in both).
void start_from(Backend& backend, Replica& to, Replica& from) {
  for (auto [src, dst] : {std::pair{&from.model->params(), &to.model->params()},
                          std::pair{&from.model->buffers(), &to.model->buffers()},
                          std::pair{&from.sgd->momentum_buffer(), &to.sgd->momentum_buffer()}}) {
    const std::vector<float> host = to_host(backend, *src);
    backend.copy_from_host(host.data(), *dst);
  }
}

// One BatchNorm2d layer through the real exchange, rank r holding r + 1 samples of a batch
// every rank knows: its output, input gradient and the running statistics equal those of a
// plain BatchNorm2d over the whole batch (same process), and the ranks' dgamma and dbeta sum
// to the plain layer's; with and without the fused ReLU.
TEST(SyncBatchNorm, LayerOverUnequalShardsEqualsTheWholeBatch) {
  auto comm = make_mpi_communicator();
  const int world = comm->size(), rank = comm->rank();
  if (const auto why = no_gpu_reason()) GTEST_SKIP() << *why;
  BackendUnderTest under_test = make_backend_under_test();
  Backend& backend = *under_test.backend;
  CommStatsExchange exchange(*comm);
  constexpr int64_t kH = 3, kW = 5, kC = 24;
  const int64_t total = world * (world + 1) / 2, first = rank * (rank + 1) / 2, mine = rank + 1;
  const int64_t per_sample = kH * kW * kC;
  for (bool relu : {false, true}) {
    SCOPED_TRACE(relu ? "fused ReLU" : "no ReLU");
    std::mt19937 gen(41);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> x(total * per_sample), dy(x.size()), gamma(kC), beta(kC);
    for (auto& v : x) v = 3.f + 2.f * u(gen);
    for (auto& v : dy) v = u(gen);
    for (auto& v : gamma) v = 1.f + 0.5f * u(gen);
    for (auto& v : beta) v = 0.5f * u(gen);

    auto layer_of = [&](nn::ParameterStore& store) {
      nn::BatchNormOptions options;
      options.fuse_relu = relu;
      auto bn = std::make_unique<nn::BatchNorm2d>(store, "bn", kC, options);
      store.finalize();
      store.write("bn.weight", gamma.data(), kC);
      store.write("bn.bias", beta.data(), kC);
      return bn;
    };
    auto tensor_of = [&](const float* p, int64_t n) {
      Tensor t = backend.allocate({n, kH, kW, kC});
      backend.copy_from_host(p, t);
      return t;
    };
    nn::ParameterStore whole_store(backend), shard_store(backend);
    shard_store.set_stats_exchange(&exchange);
    auto whole = layer_of(whole_store);
    auto shard = layer_of(shard_store);

    const Tensor y_ref = whole->forward(tensor_of(x.data(), total), true);
    const Tensor dx_ref = whole->backward(tensor_of(dy.data(), total));
    const Tensor y = shard->forward(tensor_of(x.data() + first * per_sample, mine), true);
    const Tensor dx = shard->backward(tensor_of(dy.data() + first * per_sample, mine));

    const std::vector<float> y_all = to_host(backend, y_ref), dx_all = to_host(backend, dx_ref);
    const std::vector<float> y_mine = to_host(backend, y), dx_mine = to_host(backend, dx);
    const auto offset = static_cast<std::ptrdiff_t>(first * per_sample);
    EXPECT_LE(max_abs_diff(y_mine, {y_all.begin() + offset, y_all.begin() + offset + y.numel()}),
              2e-6);
    EXPECT_LE(
        max_abs_diff(dx_mine, {dx_all.begin() + offset, dx_all.begin() + offset + dx.numel()}),
        2e-6);
    EXPECT_LE(max_abs_diff(to_host(backend, shard_store.buffers()),
                           to_host(backend, whole_store.buffers())),
              1e-6);
    std::vector<double> grads(2 * kC), summed(2 * kC * world);
    const std::vector<float> g = to_host(backend, shard_store.grads());
    std::copy(g.begin(), g.end(), grads.begin());
    comm->allgather(grads.data(), 2 * kC, summed.data());
    const std::vector<float> g_ref = to_host(backend, whole_store.grads());
    double worst = 0;
    for (int64_t i = 0; i < 2 * kC; ++i) {
      double s = 0;
      for (int r = 0; r < world; ++r) s += summed[r * 2 * kC + i];
      worst = std::max(worst, std::abs(s - g_ref[i]));
    }
    EXPECT_LE(worst, 1e-5) << "the ranks' dgamma and dbeta sum to the whole batch's";
  }
}

TEST(SyncBatchNorm, WRanksReproduceOneRankWithTheWholeBatchStepForStep) {
  auto comm = make_mpi_communicator();
  const int world = comm->size(), rank = comm->rank();
  ASSERT_EQ(kGlobalBatch % world, 0) << "run with a world size dividing " << kGlobalBatch;
  ASSERT_NE(kSamples % world, 0) << "the test wants a padded last step";
  const int64_t local_batch = kGlobalBatch / world;
  if (const auto why = no_gpu_reason()) GTEST_SKIP() << *why;
  BackendUnderTest under_test = make_backend_under_test();
  Backend& backend = *under_test.backend;
  const DatasetFile file(kDataset, rank);
  data::HDF5Dataset set(file.path, "train");
  std::vector<std::unique_ptr<Shard>> shards;
  for (int r = 0; r < world; ++r)
    shards.push_back(std::make_unique<Shard>(set, world, r, local_batch, kSeed));
  Replica reference(backend, resnet8(backend), kLr);
  Replica synced(backend, resnet8(backend), kLr);
  Replica plain(backend, resnet8(backend), kLr);
  CommStatsExchange exchange(*comm);
  synced.model->store().set_stats_exchange(&exchange);
  auto synced_reducer = reducer_for(*synced.model, *under_test.gradient_comm, 8192);
  auto plain_reducer = reducer_for(*plain.model, *under_test.gradient_comm, 8192);

  const int64_t steps = shards[0]->sampler.num_samples() / local_batch;
  ASSERT_EQ(steps * local_batch, shards[0]->sampler.num_samples()) << "a full last step";
  double worst_loss = 0, worst_grad = 0, worst_weight = 0, worst_buffer = 0;
  double worst_smooth_grad = 0, worst_smooth_weight = 0;
  int kinked_steps = 0;
  std::vector<int64_t> seen;
  for (auto& s : shards) s->loader->start_epoch(0);
  for (int64_t step = 0; step < steps; ++step) {
    SCOPED_TRACE(fmt::format("step {} of {}", step + 1, steps));
    std::vector<const data::HostBatch*> parts;
    for (auto& s : shards) parts.push_back(s->loader->next());
    for (const auto* p : parts) ASSERT_TRUE(p && p->size() == local_batch);
    const data::HostBatch whole = concatenated(parts);
    seen.insert(seen.end(), whole.indices.begin(), whole.indices.end());

    start_from(backend, synced, reference);
    const float ref_loss = reference.forward_backward(backend, whole);
    double loss = synced.forward_backward(backend, *parts[rank]);
    synced_reducer->finish();
    const double grad_err = relative_max_error(to_host(backend, synced.model->grads()),
                                               to_host(backend, reference.model->grads()));
    reference.sgd->step(kLr);
    synced.sgd->step(kLr);
    comm->allreduce_sum(&loss, 1);
    loss /= world;  // equal local batches: the mean of the means is the global mean

    const double loss_diff = std::abs(loss - ref_loss) / std::max(1.0, std::abs(double(ref_loss)));
    const std::vector<float> w = to_host(backend, synced.model->params());
    const std::vector<float> b = to_host(backend, synced.model->buffers());
    const double weight_diff = max_abs_diff(w, to_host(backend, reference.model->params()));
    const double buffer_diff = max_abs_diff(b, to_host(backend, reference.model->buffers()));
    worst_loss = std::max(worst_loss, loss_diff);
    worst_grad = std::max(worst_grad, grad_err);
    worst_weight = std::max(worst_weight, weight_diff);
    worst_buffer = std::max(worst_buffer, buffer_diff);
    // The forward is continuous: every step within rounding.
    EXPECT_LE(loss_diff, 1e-6);
    EXPECT_LE(buffer_diff, 1e-6);
    // The gradient jumps where a ReLU input crosses zero (see the tolerances above).
    if (grad_err > 1e-5 || weight_diff > 1e-6) {
      ++kinked_steps;
    } else {
      worst_smooth_grad = std::max(worst_smooth_grad, grad_err);
      worst_smooth_weight = std::max(worst_smooth_weight, weight_diff);
    }
    EXPECT_LE(grad_err, 2e-2);
    EXPECT_LE(weight_diff, 1e-3);
    ASSERT_TRUE(same_on_every_rank(*comm, w)) << "weights differ between ranks";
    ASSERT_TRUE(same_on_every_rank(*comm, b)) << "BN buffers differ between ranks";

    if (step == 0) {  // the control: plain DDP, each rank's BN on its own B/W samples
      plain.forward_backward(backend, *parts[rank]);
      plain_reducer->finish();
      plain.sgd->step(kLr);
      const std::vector<float> pb = to_host(backend, plain.model->buffers());
      const double plain_diff = max_abs_diff(pb, to_host(backend, reference.model->buffers()));
      EXPECT_GT(plain_diff, 100 * 1e-4) << "without the exchange the statistics must differ";
      EXPECT_FALSE(same_on_every_rank(*comm, pb));
      if (rank == 0) std::printf("plain DDP, step 1: |BN buffer diff| %.3g\n", plain_diff);
    }
  }
  EXPECT_LE(kinked_steps, 3) << "steps whose gradients differ beyond rounding";
  EXPECT_EQ(shards[0]->loader->next(), nullptr) << "the epoch has more steps than expected";
  // Every sample once, and the padding (the permutation's first sample) a second time.
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(static_cast<int64_t>(seen.size()), kSamples + (world - kSamples % world));
  EXPECT_EQ(std::unique(seen.begin(), seen.end()) - seen.begin(), kSamples);
  if (rank == 0)
    std::printf(
        "world %d: %lld steps, worst relative loss diff %.3g, |BN buffer diff| %.3g, "
        "relative gradient diff %.3g, |weight diff| %.3g; %d steps past the rounding "
        "bars (a ReLU input at zero), worst of the others: gradient %.3g, weight "
        "%.3g\n",
        world, static_cast<long long>(steps), worst_loss, worst_buffer, worst_grad, worst_weight,
        kinked_steps, worst_smooth_grad, worst_smooth_weight);
}

}  // namespace
}  // namespace dp

DP_MPI_TEST_MAIN()
