// The forward pass, the loss and the backward pass of a training step, run eagerly or, where
// the backend can capture device work (CUDA), as a captured graph replayed with one launch:
// at 32x32 images a ResNet step is several hundred short kernels, and on a fast GPU their
// launch overhead, not the arithmetic, would set the pace.
//
// Graph rules. The first full-size step runs eagerly (cuDNN algorithm search, buffers
// growing to size); the next full-size step is captured and replayed, and so on with one
// graph per pair of input buffers (the uploader alternates two). A replay refused because
// device memory was released since (an evaluation regrew a buffer) drops the graphs and
// captures again. Partial batches run eagerly. During capture the grad-ready hook is
// detached, so no collective is recorded into the graph; after a replay
// GradientReducer::finish() starts every bucket at once, trading the overlap of reduction with
// backward for the launches saved. A change of which parameters require a gradient (a group
// frozen mid-run) changes what backward runs: the graphs are dropped and the next full-size
// step runs eagerly before capturing again. A capture that fails turns graphs off for the run,
// with one log line saying why; training goes on eagerly.
#pragma once

#include <map>
#include <memory>
#include <utility>

#include "backend/backend.h"
#include "nn/model.h"

namespace dp {

class ForwardBackward {
 public:
  // `use_graphs`: capture where the backend can. `full_batch`: this rank's batch size.
  // `sum_over_ranks` 0: the loss is the batch mean (torch's reduction='mean'); W > 0: its
  // gradient is that of the SUM over the global batch of W ranks (reduction='sum' on one
  // rank): each rank's dlogits is its mean's times n_local * W, so that the gradient
  // reducer's average over ranks, (1/W) sum_r W * sum_{i in r} dl_i, is the global sum.
  ForwardBackward(nn::Model& model, Backend& backend, float label_smoothing, bool use_graphs,
                  int64_t full_batch, int sum_over_ranks = 0);

  // Queues the forward pass and the loss on `images` / `labels`. Returns true when a graph
  // ran instead, backward included: then backward() must not be called.
  bool forward(const Tensor& images, const Tensor& labels);
  // Waits for the loss of the last forward(): the batch mean (also under the summed
  // reduction, so logs compare across batch sizes), and the argmax hits.
  float read_loss(int64_t& correct);
  // The gradient of the loss w.r.t. the logits (for checks between forward and backward).
  Tensor& dlogits() { return dlogits_; }
  // The eager backward pass of the last forward() that returned false.
  void backward();

  int64_t captures() const { return captures_; }

 private:
  // Replays (capturing first where needed) the graph for these input buffers; false when the
  // step must run eagerly.
  bool run_graph(const Tensor& images, const Tensor& labels);
  void drop_graphs();
  // The loss and its gradient w.r.t. the logits, queued (the reduction applied).
  void queue_loss(const Tensor& logits, const Tensor& labels);

  nn::Model& model_;
  Backend& backend_;
  float label_smoothing_;
  bool use_graphs_;
  int64_t full_batch_;
  int sum_over_ranks_;
  bool warmed_up_ = false;  // a full-size step has run eagerly
  // The store's requires_grad_version() the graphs were captured under.
  uint64_t graphs_requires_grad_version_ = 0;
  bool last_full_ = false;
  Tensor dlogits_;
  // The last forward's logits and labels (handles: a layer's buffer may be reshaped later).
  Tensor logits_, labels_;
  struct Captured {
    std::unique_ptr<CapturedWork> graph;
    Tensor logits;  // where the graph leaves them
  };
  std::map<std::pair<const void*, const void*>, Captured> graphs_;
  int64_t captures_ = 0;
};

}  // namespace dp
