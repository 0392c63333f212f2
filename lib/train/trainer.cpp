#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "comm/comm_choice.h"
#include "comm/fault_injection.h"
#include "comm/gradient_reducer.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/distributed_sampler.h"
#include "data/hdf5_dataset.h"
#include "data/sharded_loader.h"
#include "io/metrics_writer.h"
#include "nn/model.h"
#include "optim/lr_schedule.h"
#include "optim/sgd.h"
#include "train/backend_choice.h"
#include "train/build_info.h"
#include "train/device_batch.h"
#include "train/evaluator.h"
#include "train/model_state.h"
#include "train/progress.h"
#include "train/run_directory.h"

namespace dp {

namespace {

// Sums of one epoch's training statistics on this rank.
struct EpochTotals {
  double loss_sum = 0;  // sum over samples
  int64_t correct = 0, samples = 0, steps = 0;
  PhaseTimes times;
  double comm_hidden = 0;  // part of times.comm overlapped with backward
};

// The parameters as slices of the flat gradient buffer, keyed by ParameterStore id, for the
// bucketed gradient reducer.
std::vector<GradientSlice> gradient_slices(const nn::ParameterStore& store) {
  std::vector<GradientSlice> slices;
  for (nn::ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const nn::StateEntry& e = store.entry(id);
    if (e.kind == nn::StateKind::parameter) slices.push_back({id, e.offset, e.numel()});
  }
  return slices;
}

void broadcast_state(nn::Model& model, Communicator& comm) {
  if (comm.size() == 1) return;
  DP_CHECK(model.params().device() == Device::cpu, "host-memory broadcast needs CPU buffers");
  comm.broadcast(model.params().data(), model.params().numel(), 0);
  comm.broadcast(model.buffers().data(), model.buffers().numel(), 0);
}

}  // namespace

int train(const TrainConfig& config, const MpiSession& mpi) {
  auto comm = make_mpi_communicator();
  const int world = comm->size();
  const bool writer = comm->rank() == 0;
  if (config.batch_size % world != 0)
    throw UsageError(fmt::format("option --batch-size: {} is not divisible by the {} ranks",
                                 config.batch_size, world));
  const int64_t local_batch = config.batch_size / world;

  // Every rank opens and validates the data before step 1, so a bad file stops all of them.
  data::HDF5Dataset train_set(config.data, "train");
  data::HDF5Dataset test_set(config.data, "test");

  BackendChoice choice = choose_backend(config.device, config.threads, mpi.local_size());
  Backend& backend = *choice.backend;

  nn::ModelSpec spec;
  spec.arch = config.arch;
  spec.num_classes = train_set.num_classes();
  spec.in_channels = train_set.channels();
  spec.zero_init_residual = config.zero_init_residual;
  spec.seed = config.seed;
  std::unique_ptr<nn::Model> model = nn::make_model(spec, backend);
  broadcast_state(*model, *comm);
  // Gradients are averaged in buckets whose allreduce starts from the model's grad-ready
  // hook, overlapping the rest of backward.
  CommChoice grad_comm = choose_gradient_communicator(config.comm, model->grads().device());
  GradientReducer reducer(model->grads().data(), gradient_slices(model->store()),
                          *grad_comm.comm, static_cast<int64_t>(config.bucket_mb * 1024 * 1024));
  model->store().set_grad_ready_hook([&reducer](nn::ParameterStore::Id id) { reducer.mark_ready(id); });
  const FaultInjection fault{config.fail_at_step, config.fail_rank, config.fail_mode};

  data::DistributedSampler sampler(train_set.size(), world, comm->rank(), config.seed);
  data::LoaderOptions loader_options;
  loader_options.batch_size = local_batch;
  loader_options.prefetch_depth = config.prefetch;
  // Every rank must take the same number of steps; the sampler pads shards to equal length,
  // and a last partial batch is kept (as PyTorch's DataLoader does by default).
  loader_options.augment.random_crop = config.crop_padding > 0;
  loader_options.augment.crop_padding = config.crop_padding;
  loader_options.augment.horizontal_flip = config.flip;
  loader_options.augment.normalize = config.normalize;
  loader_options.augment.mean = train_set.mean();
  loader_options.augment.std = train_set.std();
  loader_options.augment.seed = config.seed;
  data::ShardedLoader loader(
      train_set, [&sampler](int64_t epoch) { return sampler.indices_for_epoch(epoch); },
      loader_options);

  int64_t steps_per_epoch = (sampler.num_samples() + local_batch - 1) / local_batch;
  if (config.max_steps_per_epoch > 0)
    steps_per_epoch = std::min(steps_per_epoch, config.max_steps_per_epoch);

  optim::LrScheduleSpec lr_spec;
  lr_spec.name = config.lr_schedule;
  lr_spec.base_lr = config.lr;
  lr_spec.steps_per_epoch = steps_per_epoch;
  lr_spec.epochs = config.epochs;
  lr_spec.milestones = config.lr_milestones;
  lr_spec.gamma = config.lr_gamma;
  lr_spec.min_lr = config.min_lr;
  lr_spec.pct_start = config.onecycle_pct_start;
  lr_spec.warmup_epochs = config.warmup_epochs;
  auto schedule = optim::make_lr_schedule(lr_spec);

  SgdHyper hyper;
  hyper.lr = config.lr;
  hyper.momentum = config.momentum;
  hyper.nesterov = config.nesterov;
  hyper.weight_decay = config.weight_decay;
  optim::Sgd sgd(backend, model->params(), model->grads(),
                 model->store().make_decay_mask(config.no_decay_bn_bias), hyper);
  ModelState state(*model, &sgd.momentum_buffer());

  const std::string run_name =
      config.run_name.empty() ? default_run_name(config.arch, train_set.name()) : config.run_name;
  RunDirectory run_dir(config.output_dir, run_name, config.overwrite, writer);
  std::unique_ptr<MetricsWriter> metrics;
  if (writer) {
    auto effective = config.effective;
    effective["run-name"] = run_name;
    effective["world-size"] = std::to_string(world);
    effective["backend"] = choice.reason;
    effective["gradient-comm"] = grad_comm.reason;
    metrics = std::make_unique<MetricsWriter>(run_dir.metrics(), effective, build_info());
  }

  log::info("dptrain {}: {} on {} ({} train / {} test, {} classes), {} ranks x batch {}, {}",
            DPTRAIN_VERSION, config.arch, config.data, train_set.size(), test_set.size(),
            train_set.num_classes(), world, local_batch, choice.reason);
  log::info("model {}: {} parameters; run directory {}", config.arch,
            model->store().parameter_count(), run_dir.path());

  EvalOptions eval_options;
  eval_options.batch_size = std::max<int64_t>(local_batch, 256);
  eval_options.normalize = config.normalize;
  eval_options.prefetch = config.prefetch;

  DeviceBatch device_batch(backend);
  Tensor dlogits;
  Progress progress(config.epochs, steps_per_epoch, config.batch_size);
  EvaluationResult last_eval;
  int64_t global_step = 0;

  for (int epoch = 1; epoch <= config.epochs; ++epoch) {
    const double epoch_start = now_seconds();
    EpochTotals totals;
    model->set_train(true);
    loader.start_epoch(epoch - 1);
    for (int64_t step = 0; step < steps_per_epoch; ++step, ++global_step) {
      const data::HostBatch* batch = loader.next();
      DP_CHECK(batch != nullptr, "loader ended after {} of {} steps", step, steps_per_epoch);
      totals.times.data += loader.last_wait_seconds();
      const double lr = schedule->lr(global_step);
      float loss;
      int64_t correct = 0;
      {
        ScopedTimer t(totals.times.forward);
        device_batch.upload(*batch);
        const Tensor& logits = model->forward(device_batch.images(), true);
        dlogits.ensure(logits.shape());
        loss = backend.softmax_cross_entropy(logits, device_batch.labels(),
                                             config.label_smoothing, dlogits, correct);
      }
      if (!std::isfinite(loss))
        throw NumericalError(fmt::format("non-finite loss ({}) at epoch {} step {}", loss, epoch,
                                         step + 1));
      inject_fault_if_due(fault, comm->rank(), global_step + 1);
      {
        ScopedTimer t(totals.times.backward);
        model->backward(dlogits);
      }
      {
        const ReductionTimes reduced = reducer.finish();
        totals.times.comm += reduced.comm;
        totals.comm_hidden += reduced.hidden;
      }
      {
        ScopedTimer t(totals.times.optimizer);
        sgd.step(static_cast<float>(lr));
      }
      totals.loss_sum += double(loss) * batch->size();
      totals.correct += correct;
      totals.samples += batch->size();
      totals.steps += 1;
      if ((step + 1) % config.log_every == 0 || step + 1 == steps_per_epoch)
        log::info("{}", progress.line(epoch, step + 1, loss, double(correct) / batch->size(), lr));
    }

    // Global training statistics: sums over ranks.
    double sums[2] = {totals.loss_sum, 0};
    int64_t counts[2] = {totals.correct, totals.samples};
    comm->allreduce_sum(sums, 2);
    comm->allreduce_sum(counts, 2);
    // Each rank's own work per step (the wait for the others excluded), gathered so a
    // straggler shows on rank 0.
    const double own_step_time =
        (totals.times.data + totals.times.forward + totals.times.backward +
         totals.times.optimizer) / std::max<int64_t>(totals.steps, 1);
    std::vector<double> step_times(world);
    comm->allgather(&own_step_time, 1, step_times.data());
    const double train_time = now_seconds() - epoch_start;

    EpochRecord record;
    record.epoch = epoch;
    record.steps = totals.steps;
    record.lr = schedule->lr(global_step - 1);
    record.train_loss = sums[0] / counts[1];
    record.train_acc = double(counts[0]) / counts[1];
    record.val_loss = record.val_acc = std::numeric_limits<double>::quiet_NaN();
    record.images_per_sec = counts[1] / train_time;
    record.time_data = totals.times.data;
    record.time_forward = totals.times.forward;
    record.time_backward = totals.times.backward;
    record.time_comm = totals.times.comm;
    record.time_comm_hidden = totals.comm_hidden;
    record.step_time_max = *std::max_element(step_times.begin(), step_times.end());
    record.step_time_min = *std::min_element(step_times.begin(), step_times.end());
    record.time_optimizer = totals.times.optimizer;

    const bool last = epoch == config.epochs;
    if (last || (config.eval_every > 0 && epoch % config.eval_every == 0)) {
      const double eval_start = now_seconds();
      last_eval = evaluate(*model, test_set, eval_options, *comm);
      record.time_eval = now_seconds() - eval_start;
      record.val_loss = last_eval.loss;
      record.val_acc = last_eval.accuracy();
    }
    record.epoch_time = now_seconds() - epoch_start;
    log::info("{}", progress.epoch_summary(record));

    if (writer) {
      metrics->append_epoch(record);
      if (last || (config.checkpoint_every > 0 && epoch % config.checkpoint_every == 0)) {
        CheckpointMeta meta;
        meta.ints = {{"epoch", epoch},
                     {"step", global_step},
                     {"world_size", world},
                     {"num_classes", spec.num_classes},
                     {"in_channels", spec.in_channels},
                     {"seed", static_cast<int64_t>(config.seed)}};
        // All randomness (init, sampling, augmentation) is a pure function of (seed, epoch,
        // sample index), so seed + epoch is the complete RNG state.
        meta.strings = {{"arch", config.arch},
                        {"dataset", train_set.name()},
                        {"rng", "mt19937_64 streams derived from (seed, epoch, sample index)"}};
        state.save(run_dir.checkpoint(), meta);
      }
    }
  }

  if (writer) {
    metrics->write_final(last_eval, test_set.class_names());
    log::info("final: test accuracy {:.2f}% loss {:.4f} on {} images; outputs in {}",
              100 * last_eval.accuracy(), last_eval.loss, last_eval.samples, run_dir.path());
  }
  return 0;
}

}  // namespace dp
