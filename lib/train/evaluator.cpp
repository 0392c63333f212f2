#include "train/evaluator.h"

#include <algorithm>

#include "data/distributed_sampler.h"
#include "data/sharded_loader.h"
#include "train/device_batch.h"

namespace dp {

EvaluationResult evaluate(nn::Model& model, const data::HDF5Dataset& dataset,
                          const EvalOptions& options, Communicator& comm) {
  Backend& backend = model.store().backend();
  const int64_t k = dataset.num_classes();
  std::vector<int64_t> shard = data::eval_shard_indices(dataset.size(), comm.size(), comm.rank());

  data::LoaderOptions loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.prefetch_depth = options.prefetch;
  loader_options.augment.normalize = options.normalize;
  loader_options.augment.mean = dataset.mean();
  loader_options.augment.std = dataset.std();
  loader_options.defer_augmentation = options.augment_on_backend;
  data::ShardedLoader loader(dataset, [shard](int64_t) { return shard; }, loader_options);
  loader.start_epoch(0);

  EvaluationResult result;
  result.num_classes = k;
  result.confusion.assign(k * k, 0);
  double loss_sum = 0;
  DeviceBatch device_batch(backend, options.augment_on_backend
                                        ? std::optional(augment_spec_for(loader_options.augment))
                                        : std::nullopt);
  Tensor dlogits, logits_host;
  std::vector<float> logits(0);
  while (const data::HostBatch* batch = loader.next()) {
    const int64_t n = batch->size();
    device_batch.upload(*batch);
    const Tensor& out = model.forward(device_batch.images(), /*train=*/false);
    dlogits.ensure(out.shape());
    int64_t correct = 0;
    loss_sum += double(backend.softmax_cross_entropy(out, device_batch.labels(), 0.0f, dlogits,
                                                     correct)) * n;
    logits.resize(out.numel());
    backend.copy_to_host(out, logits.data());
    const int32_t* labels = batch->labels.data<int32_t>();
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * k;
      int64_t predicted = std::max_element(row, row + k) - row;
      result.confusion[labels[i] * k + predicted] += 1;
    }
    result.samples += n;
  }
  comm.allreduce_sum(result.confusion.data(), k * k);
  comm.allreduce_sum(&loss_sum, 1);
  int64_t samples = result.samples;
  comm.allreduce_sum(&samples, 1);
  result.samples = samples;
  result.loss = samples ? loss_sum / samples : 0.0;
  return result;
}

}  // namespace dp
