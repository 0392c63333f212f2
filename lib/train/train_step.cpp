#include "train/train_step.h"

#include "train/param_groups.h"

namespace dp {

TrainStep::TrainStep(nn::Model& model, const TrainStepOptions& options, GradientReducer& reducer,
                     Communicator& model_comm, StepGuard& guard, optim::Optimizer& optimizer,
                     TestHooks& hooks)
    : model_(model),
      reducer_(reducer),
      model_comm_(model_comm),
      broadcast_buffers_(options.broadcast_buffers && model_comm.size() > 1),
      guard_(guard),
      optimizer_(optimizer),
      hooks_(hooks),
      device_batch_(model.store().backend(), options.backend_augment),
      forward_backward_(model, model.store().backend(), options.label_smoothing,
                        options.cuda_graphs && !hooks.rewrites_dlogits(), options.local_batch,
                        options.sum_over_ranks) {}

StepResult TrainStep::run(const data::HostBatch& batch, const StepPosition& at, StepTimes times) {
  StepResult result;
  result.samples = batch.size();
  bool graphed = false;
  hooks_.before_step(at, batch);
  apply_frozen_groups(optimizer_.groups(), model_.store());
  {
    // A graph step replays backward too: its whole time counts as forward time.
    ScopedTimer t(times.phases.forward);
    device_batch_.upload(batch);
    graphed = forward_backward_.forward(device_batch_.images(), device_batch_.labels());
    result.loss = forward_backward_.read_loss(result.correct);
  }
  hooks_.after_forward(at.global_step + 1, forward_backward_.dlogits());
  guard_.heartbeat();
  // A replayed graph ran backward too, without grad-ready hooks: finish() below starts
  // every bucket nobody reported.
  if (!graphed) {
    ScopedTimer t(times.phases.backward);
    forward_backward_.backward();
  }
  const ReductionTimes reduced = reducer_.finish();
  times.phases.comm += reduced.comm;
  times.comm_hidden += reduced.hidden;
  {
    ScopedTimer t(times.phases.comm);
    broadcast_buffers();
  }
  {
    // The gradients' non-finite check reads a reduction of them back: on a GPU it waits for
    // what backward left running, which is counted here rather than nowhere.
    ScopedTimer t(times.phases.optimizer);
    result.updated =
        !guard_.skip_update(result.loss, model_.grads(), at.epoch, at.step_in_epoch + 1);
    if (result.updated) optimizer_.step();
  }
  return result;
}

// After the reduction has finished, so no other collective is in flight on the communicator.
void TrainStep::broadcast_buffers() {
  if (!broadcast_buffers_) return;
  Tensor& buffers = model_.buffers();
  model_comm_.broadcast(buffers.data(), buffers.numel(), 0);
}

}  // namespace dp
