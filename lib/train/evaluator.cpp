#include "train/evaluator.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/error.h"
#include "data/distributed_sampler.h"
#include "data/sharded_loader.h"
#include "train/device_batch.h"

namespace dp {

namespace {

// One loader and device batch per view, all over the same shard in the same order, so their
// k-th batches hold the same samples.
class ViewBatches {
 public:
  ViewBatches(const data::HDF5Dataset& dataset, const EvalOptions& options,
              const std::vector<int64_t>& shard, Backend& backend) {
    DP_CHECK(!options.views.empty(), "evaluation needs at least one view");
    // No batch larger than the shard: its buffers would be sized for images that never come.
    const int64_t batch =
        std::min<int64_t>(options.batch_size, std::max<int64_t>(1, int64_t(shard.size())));
    for (const EvalView& view : options.views) {
      data::AugmentConfig augment = evaluation_augmentation(view, options.normalize, dataset);
      if (!options.mean.empty()) {
        augment.mean = options.mean;
        augment.std = options.std;
      }
      data::LoaderOptions loader =
          loader_options(augment, batch, options.prefetch, options.augment_on_backend);
      loaders_.push_back(std::make_unique<data::ShardedLoader>(
          dataset, [shard](int64_t) { return shard; }, loader));
      loaders_.back()->start_epoch(0);
      device_.push_back(std::make_unique<DeviceBatch>(backend, backend_augmentation(loader)));
    }
  }
  // The next batch of every view; false after the last.
  bool next() {
    for (size_t v = 0; v < loaders_.size(); ++v) {
      const data::HostBatch* batch = loaders_[v]->next();
      if (!batch) return false;
      if (v == 0) host_ = batch;
      device_[v]->upload(*batch);
    }
    return true;
  }
  size_t views() const { return loaders_.size(); }
  const data::HostBatch& host() const { return *host_; }
  const DeviceBatch& device(size_t view) const { return *device_[view]; }

 private:
  std::vector<std::unique_ptr<data::ShardedLoader>> loaders_;
  std::vector<std::unique_ptr<DeviceBatch>> device_;
  const data::HostBatch* host_ = nullptr;
};

void count_predictions(const std::vector<float>& logits, const int32_t* labels, int64_t n,
                       int64_t k, std::vector<int64_t>& confusion) {
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * k;
    const int64_t predicted = std::max_element(row, row + k) - row;
    confusion[labels[i] * k + predicted] += 1;
  }
}

// The mean of the views' logits for the current batch, on the host and (for the loss) in
// `mean` on the backend. One view's logits are used as they are.
const Tensor& mean_logits(nn::Model& model, const ViewBatches& batches,
                          const std::vector<EvalView>& views, std::vector<float>& host,
                          std::vector<float>& view_logits, Tensor& mean) {
  Backend& backend = model.store().backend();
  const Tensor* out = &model.forward(batches.device(0).images(), /*train=*/false);
  host.resize(out->numel());
  backend.copy_to_host(*out, host.data());
  if (batches.views() == 1) return *out;
  // Weights 1 (the default) leave the sum unweighted: x * 1.0f is x.
  float total = views[0].weight;
  for (float& x : host) x *= views[0].weight;
  view_logits.resize(host.size());
  for (size_t v = 1; v < batches.views(); ++v) {
    out = &model.forward(batches.device(v).images(), /*train=*/false);
    backend.copy_to_host(*out, view_logits.data());
    for (size_t i = 0; i < host.size(); ++i) host[i] += views[v].weight * view_logits[i];
    total += views[v].weight;
  }
  const float scale = 1.0f / total;
  for (float& x : host) x *= scale;
  if (mean.shape() != out->shape()) mean = backend.allocate(out->shape());
  backend.copy_from_host(host.data(), mean);
  return mean;
}

// Sums over ranks.
void reduce_result(EvaluationResult& result, double& loss_sum, Communicator& comm) {
  const int64_t k = result.num_classes;
  comm.allreduce_sum(result.confusion.data(), k * k);
  comm.allreduce_sum(&loss_sum, 1);
  int64_t samples = result.samples;
  comm.allreduce_sum(&samples, 1);
  result.samples = samples;
  result.loss = samples ? loss_sum / samples : 0.0;
}

// After a batch (`had_batch`: this rank evaluated one; its shard may end a batch before the
// others'): whether any rank wants to abandon the evaluation, and whether any had a batch.
// One small allreduce: every rank stops within a batch of a signal, and none waits longer than
// a batch of the others' in a collective, where its watchdog sees no progress.
struct BatchAgreement {
  bool abandon = false, any_batch = false;
};
BatchAgreement agree_after_batch(bool had_batch, bool abandon, Communicator& comm) {
  int64_t flags[2] = {had_batch ? 1 : 0, abandon ? 1 : 0};
  comm.allreduce_sum(flags, 2);
  return {flags[1] > 0, flags[0] > 0};
}

}  // namespace

EvaluationResult evaluate(nn::Model& model, const data::HDF5Dataset& dataset,
                          const EvalOptions& options, Communicator& comm) {
  return *evaluate_unless(model, dataset, options, comm, nullptr);
}

std::optional<EvaluationResult> evaluate_unless(nn::Model& model, const data::HDF5Dataset& dataset,
                                                const EvalOptions& options, Communicator& comm,
                                                const std::function<bool()>& abandon) {
  Backend& backend = model.store().backend();
  const int64_t k = dataset.num_classes();
  float weights = 0;
  for (const EvalView& view : options.views) weights += view.weight;
  if (!(weights > 0)) throw UsageError("evaluation: the views' weights must sum to more than 0");
  ViewBatches batches(dataset, options,
                      data::eval_shard_indices(dataset.size(), comm.size(), comm.rank()), backend);
  EvaluationResult result;
  result.num_classes = k;
  result.confusion.assign(k * k, 0);
  double loss_sum = 0;
  Tensor dlogits, mean;
  std::vector<float> logits, view_logits;
  for (bool shard_done = false;;) {
    const bool had_batch = !shard_done && batches.next();
    shard_done = !had_batch;
    if (abandon) {  // training's evaluation: the ranks agree after every batch
      const BatchAgreement agreed = agree_after_batch(had_batch, abandon(), comm);
      if (agreed.abandon) return std::nullopt;  // on every rank alike
      if (!agreed.any_batch) break;
    } else if (!had_batch) {
      break;
    }
    if (!had_batch) continue;
    const int64_t n = batches.host().size();
    const Tensor& out = mean_logits(model, batches, options.views, logits, view_logits, mean);
    dlogits.ensure(out.shape());
    int64_t correct = 0;
    loss_sum += double(backend.softmax_cross_entropy(out, batches.device(0).labels(), 0.0f,
                                                     dlogits, correct)) * n;
    count_predictions(logits, batches.host().labels.data<int32_t>(), n, k, result.confusion);
    result.samples += n;
    if (options.on_batch) options.on_batch();
  }
  reduce_result(result, loss_sum, comm);
  return result;
}

void require_finite_loss(const EvaluationResult& result, const std::string& what) {
  if (!std::isfinite(result.loss))
    throw NumericalError(
        fmt::format("{}: the test loss is {} (the model's weights or BatchNorm running statistics "
                    "are likely not finite)",
                    what, result.loss));
}

}  // namespace dp
