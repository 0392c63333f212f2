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
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "comm/communicator.h"
#include "train/device_batch.h"
#ifdef DP_EQUIVALENCE_ON_CUDA
#include "backend/cuda/device_probe.h"
#include "backend/cuda/make_cuda_backend.h"
#include "comm/host_staged_communicator.h"
#endif
#include "comm/gradient_reducer.h"
#include "core/hash.h"
#include "data/distributed_sampler.h"
#include "data/hdf5_dataset.h"
#include "data/packer.h"
#include "data/sharded_loader.h"
#include "mpi_test_main.h"
#include "nn/conv2d.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "nn/pooling.h"  // GlobalAvgPool
#include "optim/sgd.h"

namespace dp {
namespace {

constexpr int64_t kSamples = 203, kSide = 8, kChannels = 3, kClasses = 10;
constexpr int64_t kGlobalBatch = 6;  // divisible by 2 and 3
constexpr int kEpochs = 2;
constexpr uint64_t kSeed = 11;

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

std::string write_dataset(int rank) {
  data::RawDataset raw;
  raw.name = "ddp-equivalence";
  for (int k = 0; k < kClasses; ++k) raw.class_names.push_back(fmt::format("c{}", k));
  raw.height = raw.width = kSide;
  raw.channels = kChannels;
  std::mt19937_64 rng(5);
  for (data::RawSplit* split : {&raw.train, &raw.test}) {
    split->count = split == &raw.train ? kSamples : 20;
    split->images.resize(split->count * kSide * kSide * kChannels);
    for (auto& b : split->images) b = static_cast<uint8_t>(rng() % 256);
    for (int64_t i = 0; i < split->count; ++i) split->labels.push_back(rng() % kClasses);
  }
  std::vector<double> mean, std;
  data::channel_mean_std(raw.train, kChannels, mean, std);
  const std::string path = (std::filesystem::temp_directory_path() /
                            fmt::format("dp_ddp_equivalence_{}_{}.h5", ::getpid(), rank))
                               .string();
  data::write_packed(raw, path, mean, std);
  return path;
}

// One training setup: model, sampler shard, loader with augmentation, SGD with momentum and
// weight decay — the trainer's loop in miniature.
struct TrainingRun {
  TrainingRun(Backend& backend, const data::HDF5Dataset& set, int world, int rank, int64_t batch)
      : sampler(set.size(), world, rank, kSeed), device_batch(backend) {
    nn::ModelSpec spec;
    spec.num_classes = kClasses;
    spec.in_channels = kChannels;
    spec.seed = kSeed;
    model = std::make_unique<TinyNet>(spec, backend);
    data::LoaderOptions options;
    options.batch_size = batch;
    options.augment.random_crop = true;
    options.augment.crop_padding = 2;
    options.augment.horizontal_flip = true;
    options.augment.mean = set.mean();
    options.augment.std = set.std();
    options.augment.seed = kSeed;
    loader = std::make_unique<data::ShardedLoader>(
        set, [this](int64_t e) { return sampler.indices_for_epoch(e); }, options);
    SgdHyper hyper;
    hyper.lr = 0.05f;
    hyper.momentum = 0.9f;
    hyper.weight_decay = 5e-4f;
    sgd = std::make_unique<optim::Sgd>(backend, model->params(), model->grads(),
                                       model->store().make_decay_mask(false), hyper);
  }
  // Forward + backward on the next batch; returns the batch's mean loss.
  float forward_backward(Backend& backend, const data::HostBatch& batch) {
    device_batch.upload(batch);
    const Tensor& logits = model->forward(device_batch.images(), true);
    dlogits.ensure(logits.shape());
    int64_t correct = 0;
    float loss = backend.softmax_cross_entropy(logits, device_batch.labels(), 0.0f, dlogits,
                                               correct);
    model->backward(dlogits);
    return loss;
  }

  data::DistributedSampler sampler;
  std::unique_ptr<TinyNet> model;
  std::unique_ptr<data::ShardedLoader> loader;
  std::unique_ptr<optim::Sgd> sgd;
  DeviceBatch device_batch;
  Tensor dlogits;
};

// FNV-1a over the raw bytes: equal weights, bit for bit, give equal checksums.
uint64_t checksum(const std::vector<float>& v) {
  return hash::fnv1a64_bytes(v.data(), v.size() * sizeof(float));
}

std::vector<float> to_host(Backend& backend, const Tensor& t) {
  std::vector<float> host(t.numel());
  backend.copy_to_host(t, host.data());
  return host;
}

// The backend under test, and the communicator for its gradients.
struct BackendUnderTest {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Communicator> gradient_comm;
};

#ifdef DP_EQUIVALENCE_ON_CUDA
BackendUnderTest make_backend_under_test() {
  CudaOptions options;  // strict FP32, so the comparison tolerances hold
  options.deterministic = true;
  BackendUnderTest b;
  b.backend = make_cuda_backend(options);
  b.gradient_comm = make_host_staged_communicator(
      make_mpi_communicator(), make_cuda_device_copier(b.backend->compute_stream()));
  return b;
}
#else
BackendUnderTest make_backend_under_test() {
  return {std::make_unique<cpu::CpuBackend>(1), make_mpi_communicator()};
}
#endif

TEST(DataParallel, MatchesOneRankWithTheWholeBatchStepForStep) {
  auto comm = make_mpi_communicator();
  const int world = comm->size(), rank = comm->rank();
  ASSERT_EQ(kGlobalBatch % world, 0) << "run with a world size dividing " << kGlobalBatch;
  ASSERT_NE(kSamples % world, 0) << "the test wants a dataset size the world does not divide";
  const int64_t local_batch = kGlobalBatch / world;

#ifdef DP_EQUIVALENCE_ON_CUDA
  const CudaProbe probe = probe_cuda();  // the same answer on every rank: they share the GPU
  if (probe.device_count == 0) GTEST_SKIP() << "no usable GPU: " << probe.reason;
#endif
  BackendUnderTest under_test = make_backend_under_test();
  Backend& backend = *under_test.backend;
  const std::string path = write_dataset(rank);
  {
    data::HDF5Dataset set(path, "train");
    TrainingRun reference(backend, set, 1, 0, kGlobalBatch);
    TrainingRun parallel(backend, set, world, rank, local_batch);
    std::vector<GradientSlice> slices;
    const nn::ParameterStore& store = parallel.model->store();
    for (size_t id = 0; id < store.entries().size(); ++id)
      if (store.entry(id).kind == nn::StateKind::parameter)
        slices.push_back({id, store.entry(id).offset, store.entry(id).numel()});
    // 2 KiB buckets: several buckets, so allreduces really start during backward.
    GradientReducer reducer(parallel.model->grads().data(), slices, *under_test.gradient_comm,
                            2048);
    ASSERT_GT(reducer.bucket_count(), 2u);
    parallel.model->store().set_grad_ready_hook(
        [&reducer](nn::ParameterStore::Id id) { reducer.mark_ready(id); });

    const int64_t full_steps = kSamples / kGlobalBatch;
    int steps_checked = 0;
    double worst_weight_diff = 0, worst_loss_diff = 0;
    for (int epoch = 0; epoch < kEpochs; ++epoch) {
      reference.loader->start_epoch(epoch);
      parallel.loader->start_epoch(epoch);
      for (int64_t step = 0; step < full_steps; ++step) {
        const data::HostBatch* ref_batch = reference.loader->next();
        const data::HostBatch* my_batch = parallel.loader->next();
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
        reference.sgd->step(0.05f);

        double loss = parallel.forward_backward(backend, *my_batch);
        reducer.finish();
        parallel.sgd->step(0.05f);
        comm->allreduce_sum(&loss, 1);
        loss /= world;  // equal local batches: the mean of the means is the global mean

        const double loss_diff = std::abs(loss - ref_loss);
        worst_loss_diff = std::max(worst_loss_diff, loss_diff);
        ASSERT_LE(loss_diff, 1e-5 * std::max(1.0, std::abs(double(ref_loss))))
            << "epoch " << epoch << " step " << step << ": loss " << loss << " vs " << ref_loss;

        const std::vector<float> w = to_host(backend, parallel.model->params());
        const std::vector<float> w_ref = to_host(backend, reference.model->params());
        double weight_diff = 0;
        for (size_t i = 0; i < w.size(); ++i)
          weight_diff = std::max(weight_diff, double(std::abs(w[i] - w_ref[i])));
        worst_weight_diff = std::max(worst_weight_diff, weight_diff);
        ASSERT_LE(weight_diff, 2e-5) << "epoch " << epoch << " step " << step;

        // Every rank holds the same weights, bit for bit (53 bits of the hash suffice).
        double sum = static_cast<double>(checksum(w) >> 11);
        std::vector<double> sums(world);
        comm->allgather(&sum, 1, sums.data());
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
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace dp

DP_MPI_TEST_MAIN()
