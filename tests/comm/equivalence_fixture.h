// What the W-ranks-versus-one-rank tests (test_ddp_equivalence.cpp, test_sync_bn_equivalence.cpp)
// share: a random packed dataset per rank, a rank's shard loaded as the trainer loads it, a
// model with SGD taking the trainer's step, the backend under test with the communicator for
// its gradients, a GradientReducer fed by a model's backward, and the comparisons.
//
// Built twice, like the tests: on the CPU backend, and with DP_EQUIVALENCE_ON_CUDA on the CUDA
// backend, where all ranks share one GPU and the gradients travel through the host-staged MPI
// communicator (`--comm mpi` with GPU gradients; NCCL refuses two ranks on one device).
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "comm/communicator.h"
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
#include "nn/model.h"
#include "optim/sgd.h"
#include "support/gpu_required.h"
#include "support/max_difference.h"
#include "train/device_batch.h"

namespace dp::equivalence {

// The runs compared: a training set no world size (2, 3) divides, so the sampler pads, and a
// global batch every world size divides, so the ranks' local batches are equal.
constexpr int64_t kSamples = 203, kGlobalBatch = 6;
constexpr int64_t kChannels = 3, kClasses = 10;

// Random images and labels drawn from `seed`; the same bytes on every rank.
struct DatasetSpec {
  const char* name = "";  // dashes: the file is named after it with underscores
  int64_t test = 0, side = 0;
  uint64_t seed = 0;
  int64_t train = kSamples, channels = kChannels, classes = kClasses;
};

// The dataset packed into a file of this process's own (every rank writes one), removed when
// this goes out of scope: declare it before the HDF5Dataset reading it.
class DatasetFile {
 public:
  DatasetFile(const DatasetSpec& spec, int rank) {
    data::RawDataset raw;
    raw.name = spec.name;
    for (int k = 0; k < spec.classes; ++k) raw.class_names.push_back(fmt::format("c{}", k));
    raw.height = raw.width = spec.side;
    raw.channels = spec.channels;
    std::mt19937_64 rng(spec.seed);
    for (data::RawSplit* split : {&raw.train, &raw.test}) {
      split->count = split == &raw.train ? spec.train : spec.test;
      split->images.resize(split->count * spec.side * spec.side * spec.channels);
      for (auto& b : split->images) b = static_cast<uint8_t>(rng() % 256);
      for (int64_t i = 0; i < split->count; ++i) split->labels.push_back(rng() % spec.classes);
    }
    std::vector<double> mean, std;
    data::channel_mean_std(raw.train, spec.channels, mean, std);
    std::string stem = spec.name;
    std::replace(stem.begin(), stem.end(), '-', '_');
    path = (std::filesystem::temp_directory_path() /
            fmt::format("dp_{}_{}_{}.h5", stem, ::getpid(), rank))
               .string();
    data::write_packed(raw, path, mean, std);
  }
  ~DatasetFile() { std::filesystem::remove(path); }
  DatasetFile(const DatasetFile&) = delete;
  DatasetFile& operator=(const DatasetFile&) = delete;

  std::string path;
};

// Rank r's shard of a W-rank run, as the trainer loads it (host augmentation: crop with padding
// 2, flip, normalisation; draws seeded by `seed`). The loader asks this object's sampler, so
// it stays where it is built.
struct Shard {
  Shard(const data::HDF5Dataset& set, int world, int rank, int64_t batch, uint64_t seed)
      : sampler(set.size(), world, rank, seed) {
    data::LoaderOptions options;
    options.batch_size = batch;
    options.augment.random_crop = true;
    options.augment.crop_padding = 2;
    options.augment.horizontal_flip = true;
    options.augment.mean = set.mean();
    options.augment.std = set.std();
    options.augment.seed = seed;
    loader = std::make_unique<data::ShardedLoader>(
        set, [this](int64_t e) { return sampler.indices_for_epoch(e); }, options);
  }
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  data::DistributedSampler sampler;
  std::unique_ptr<data::ShardedLoader> loader;
};

// A model with SGD (momentum 0.9, weight decay 5e-4): the trainer's step in miniature.
struct Replica {
  Replica(Backend& backend, std::unique_ptr<nn::Model> m, float lr)
      : model(std::move(m)), device_batch(backend) {
    SgdHyper hyper;
    hyper.lr = lr;
    hyper.momentum = 0.9f;
    hyper.weight_decay = 5e-4f;
    sgd = std::make_unique<optim::Sgd>(backend, model->params(), model->grads(),
                                       model->store().make_decay_mask(false), hyper);
  }
  // Forward and backward on `batch`; returns the batch's mean loss.
  float forward_backward(Backend& backend, const data::HostBatch& batch) {
    device_batch.upload(batch);
    const Tensor& logits = model->forward(device_batch.images(), true);
    dlogits.ensure(logits.shape());
    int64_t correct = 0;
    const float loss =
        backend.softmax_cross_entropy(logits, device_batch.labels(), 0.0f, dlogits, correct);
    model->backward(dlogits);
    return loss;
  }

  std::unique_ptr<nn::Model> model;
  std::unique_ptr<optim::Sgd> sgd;
  DeviceBatch device_batch;
  Tensor dlogits;
};

// The backend under test, and the communicator for its gradients.
struct BackendUnderTest {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Communicator> gradient_comm;
};

#ifdef DP_EQUIVALENCE_ON_CUDA
// Why the test must skip (no usable GPU), or nothing. The same answer on every rank: they
// share the GPU.
inline std::optional<std::string> no_gpu_reason() {
  const CudaProbe probe = probe_cuda();
  if (probe.device_count == 0 && !test::gpu_required()) return "no usable GPU: " + probe.reason;
  return std::nullopt;
}

inline BackendUnderTest make_backend_under_test() {
  CudaOptions options;  // strict FP32, so the comparison tolerances hold
  options.deterministic = true;
  BackendUnderTest b;
  b.backend = make_cuda_backend(options);
  b.gradient_comm = make_host_staged_communicator(
      make_mpi_communicator(), make_cuda_device_copier(b.backend->compute_stream()));
  return b;
}
#else
inline std::optional<std::string> no_gpu_reason() { return std::nullopt; }

inline BackendUnderTest make_backend_under_test() {
  return {std::make_unique<cpu::CpuBackend>(1), make_mpi_communicator()};
}
#endif

// A GradientReducer over the model's parameters (not its BN buffers), with buckets of
// `bucket_bytes`, fed by the model's backward as each gradient is ready.
inline std::unique_ptr<GradientReducer> reducer_for(nn::Model& model, Communicator& comm,
                                                    int64_t bucket_bytes) {
  std::vector<GradientSlice> slices;
  const nn::ParameterStore& store = model.store();
  for (size_t id = 0; id < store.entries().size(); ++id)
    if (store.entry(id).kind == nn::StateKind::parameter)
      slices.push_back({id, store.entry(id).offset, store.entry(id).numel()});
  auto reducer =
      std::make_unique<GradientReducer>(model.grads().data(), slices, comm, bucket_bytes);
  model.store().set_grad_ready_hook(
      [r = reducer.get()](nn::ParameterStore::Id id) { r->mark_ready(id); });
  return reducer;
}

inline std::vector<float> to_host(Backend& backend, const Tensor& t) {
  std::vector<float> host(t.numel());
  backend.copy_to_host(t, host.data());
  return host;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  return test::max_abs_difference(a, b);
}

// Every rank's checksum of its `v`, in rank order: equal values, bit for bit, give equal
// checksums (FNV-1a over the raw bytes; its top 53 bits, exact in a double, suffice).
inline std::vector<double> checksums_of_every_rank(Communicator& comm,
                                                   const std::vector<float>& v) {
  double mine = static_cast<double>(hash::fnv1a64_bytes(v.data(), v.size() * sizeof(float)) >> 11);
  std::vector<double> all(comm.size());
  comm.allgather(&mine, 1, all.data());
  return all;
}

// Whether every rank holds `v` bit for bit.
inline bool same_on_every_rank(Communicator& comm, const std::vector<float>& v) {
  const std::vector<double> all = checksums_of_every_rank(comm, v);
  return std::all_of(all.begin(), all.end(), [&](double x) { return x == all[0]; });
}

}  // namespace dp::equivalence
