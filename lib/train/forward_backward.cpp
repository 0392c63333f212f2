#include "train/forward_backward.h"

#include "core/error.h"
#include "core/log.h"

namespace dp {

namespace {
// One graph per input-buffer pair: the uploader's two slots, with room for a stale pair.
constexpr size_t kMaxGraphs = 4;

// The grad-ready hook taken off for a capture, and put back however the capture ends: the
// collectives it would start must stay out of the graph.
class HookDetached {
 public:
  explicit HookDetached(nn::ParameterStore& store)
      : store_(store), hook_(store.take_grad_ready_hook()) {}
  ~HookDetached() { store_.set_grad_ready_hook(std::move(hook_)); }
  HookDetached(const HookDetached&) = delete;
  HookDetached& operator=(const HookDetached&) = delete;

 private:
  nn::ParameterStore& store_;
  nn::ParameterStore::GradReadyHook hook_;
};
}  // namespace

ForwardBackward::ForwardBackward(nn::Model& model, Backend& backend, float label_smoothing,
                                 bool use_graphs, int64_t full_batch, int sum_over_ranks)
    : model_(model),
      backend_(backend),
      label_smoothing_(label_smoothing),
      use_graphs_(use_graphs),
      full_batch_(full_batch),
      sum_over_ranks_(sum_over_ranks) {}

void ForwardBackward::queue_loss(const Tensor& logits, const Tensor& labels) {
  backend_.queue_softmax_cross_entropy(logits, labels, label_smoothing_, dlogits_);
  if (sum_over_ranks_ > 0)
    backend_.scale(dlogits_, static_cast<float>(logits.dim(0) * int64_t(sum_over_ranks_)),
                   dlogits_);
}

bool ForwardBackward::forward(const Tensor& images, const Tensor& labels) {
  labels_ = labels;
  last_full_ = images.dim(0) == full_batch_;
  if (run_graph(images, labels)) return true;
  logits_ = model_.forward(images, /*train=*/true);
  queue_loss(logits_, labels);
  return false;
}

float ForwardBackward::read_loss(int64_t& correct) {
  DP_CHECK(logits_.defined(), "read_loss before any forward");
  return backend_.read_queued_loss(logits_, labels_, correct);
}

void ForwardBackward::backward() {
  model_.backward(dlogits_);
  if (last_full_) warmed_up_ = true;
}

void ForwardBackward::drop_graphs() {
  backend_.synchronize();  // no replay may still be running when its graph goes
  graphs_.clear();
}

bool ForwardBackward::run_graph(const Tensor& images, const Tensor& labels) {
  if (!use_graphs_) return false;
  const uint64_t version = model_.store().requires_grad_version();
  if (version != graphs_requires_grad_version_) {
    if (!graphs_.empty()) drop_graphs();
    graphs_requires_grad_version_ = version;
    warmed_up_ = false;
  }
  if (!warmed_up_ || !last_full_) return false;
  const auto key = std::make_pair(images.data<void>(), labels.data<void>());
  auto it = graphs_.find(key);
  if (it != graphs_.end()) {
    if (it->second.graph->replay()) {
      logits_ = it->second.logits;
      return true;
    }
    drop_graphs();  // memory was released: every graph may hold a stale address
  }
  if (graphs_.size() >= kMaxGraphs) drop_graphs();

  std::unique_ptr<CapturedWork> graph;
  Tensor logits;
  try {
    HookDetached detached(model_.store());
    graph = backend_.capture([&] {
      logits = model_.forward(images, /*train=*/true);
      queue_loss(logits, labels);
      model_.backward(dlogits_);
    });
  } catch (const Error& e) {
    use_graphs_ = false;
    log::info("CUDA graphs off for this run, steps run eagerly: capture failed: {}", e.what());
    return false;
  }
  if (!graph || !graph->replay()) {  // no graphs on this backend
    use_graphs_ = false;
    return false;
  }
  logits_ = logits;
  if (captures_++ == 0)
    log::info("CUDA graph captured: forward, loss and backward replay as one launch per step");
  graphs_.emplace(key, Captured{std::move(graph), logits});
  return true;
}

}  // namespace dp
