// `dptrain bench`: times full training steps (forward, loss, backward, SGD update) of a model
// on synthetic data, with warm-up steps excluded, and prints images/s, the split of a step and
// the achieved GFLOP/s (convolution and linear multiply-adds: forward + backward = 3x forward).
// `--peak` measures the machine's attainable GFLOP/s instead (a large oneDNN matrix multiply).
// tests/bench/bench_vs_pytorch.sh runs it beside PyTorch on the same machine.
#include <algorithm>
#include <boost/program_options.hpp>
#include <random>
#include <vector>

#include "app/commands.h"
#include "app/parse_options.h"
#include "backend/cpu/peak_flops.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "core/timer.h"
#include "nn/model.h"
#include "optim/sgd.h"
#include "train/backend_choice.h"
#include "train/forward_backward.h"

namespace po = boost::program_options;

namespace dp {

int run_bench(const std::vector<std::string>& args, MpiSession& mpi) {
  std::string arch = "resnet50", device = "auto", precision = "fp32";
  bool deterministic = false, peak = false, cuda_graphs = true, pin_threads = true;
  int64_t batch = 128, image = 32, channels = 3, classes = 10;
  int steps = 20, warmup = 3, threads = 0;
  po::options_description desc("dptrain bench options");
  desc.add_options()
      ("help,h", "print this help")
      ("arch", po::value(&arch)->default_value(arch), "model name")
      ("batch-size", po::value(&batch)->default_value(batch), "batch size")
      ("image-size", po::value(&image)->default_value(image), "square image side")
      ("channels", po::value(&channels)->default_value(channels), "image channels")
      ("classes", po::value(&classes)->default_value(classes), "classes")
      ("steps", po::value(&steps)->default_value(steps), "timed steps")
      ("warmup", po::value(&warmup)->default_value(warmup), "untimed steps first")
      ("device", po::value(&device)->default_value(device), "auto|cpu|cuda")
      ("threads", po::value(&threads)->default_value(threads), "compute threads (0: all)")
      ("pin-threads", po::value(&pin_threads)->default_value(pin_threads),
       "CPU: bind each compute thread to its own core")
      ("precision", po::value(&precision)->default_value(precision), "CUDA: fp32|tf32|bf16")
      ("deterministic", po::bool_switch(&deterministic), "CUDA: deterministic algorithms only")
      ("cuda-graphs", po::value(&cuda_graphs)->default_value(cuda_graphs),
       "CUDA: replay forward, loss and backward as one captured graph (as dptrain train)")
      ("peak", po::bool_switch(&peak), "CPU: measure the peak GFLOP/s (large matmul) and exit");
  if (!parse_options(args, desc, "usage: dptrain bench [--arch NAME] [--batch-size N]")) return 0;
  if (batch < 1 || image < 1 || channels < 1 || classes < 2 || steps < 1 || warmup < 0)
    throw UsageError("dptrain bench: sizes and step counts must be positive");

  if (peak) {
    cpu::PeakFlops p = cpu::measure_peak_flops(threads);
    log::info("peak gflops={:.1f} matmul={}x{}x{} kernel={} threads={}", p.gflops, p.size, p.size,
              p.size, p.kernel, p.threads);
    return 0;
  }

  BackendChoice choice = choose_backend(device, threads, mpi.local_rank(), mpi.local_size(),
                                        cuda_options(precision, deterministic), pin_threads,
                                        cpu_blocked_activations(arch));
  Backend& backend = *choice.backend;
  nn::ModelSpec spec;
  spec.arch = arch;
  spec.num_classes = classes;
  spec.in_channels = channels;
  auto model = nn::make_model(spec, backend);
  optim::Sgd sgd(backend, model->params(), model->grads(), Tensor(), SgdHyper{});

  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  Tensor images = backend.allocate({batch, image, image, channels});
  Tensor labels = backend.allocate({batch}, DType::i32);
  std::vector<float> host_images(images.numel());
  std::vector<int32_t> host_labels(batch);
  for (auto& v : host_images) v = normal(rng);
  for (auto& v : host_labels) v = static_cast<int32_t>(rng() % classes);
  backend.copy_from_host(host_images.data(), images);
  backend.copy_from_host(host_labels.data(), labels);
  // The training step of `dptrain train`, graphs included; a graph step's backward is inside
  // its forward time.
  ForwardBackward step(*model, backend, 0.0f, cuda_graphs, batch);

  PhaseTimes times;
  std::vector<double> step_seconds;  // for the median: robust to a shared machine's stalls
  double start = 0;
  int64_t macs_per_step = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    if (i == warmup) {
      backend.synchronize();
      times.reset();
      start = now_seconds();
    }
    const double step_start = now_seconds();
    int64_t correct = 0;
    bool graphed = false;
    {
      ScopedTimer t(times.forward);
      graphed = step.forward(images, labels);
      step.read_loss(correct);  // waits for the device
    }
    if (!graphed) {
      ScopedTimer t(times.backward);
      step.backward();
      backend.synchronize();
    }
    {
      ScopedTimer t(times.optimizer);
      sgd.step(0.01f);
      backend.synchronize();
    }
    if (i == 0) macs_per_step = model->store().forward_macs();  // an eager step counts them
    if (i >= warmup) step_seconds.push_back(now_seconds() - step_start);
  }
  const double elapsed = now_seconds() - start;
  std::nth_element(step_seconds.begin(), step_seconds.begin() + steps / 2, step_seconds.end());
  const double median = step_seconds[steps / 2];  // the upper median for an even count
  // fwd + bwd-data + bwd-weights: three passes of 2 FLOPs per multiply-add.
  const double step_gflop = 6.0 * static_cast<double>(macs_per_step) * 1e-9;
  log::info(
      "bench arch={} batch={} image={}x{}x{} steps={} images_per_sec={:.1f} step_ms={:.1f} "
      "median_images_per_sec={:.1f} median_step_ms={:.1f} forward_ms={:.1f} backward_ms={:.1f} "
      "optimizer_ms={:.1f} gflop_per_step={:.2f} "
      "gflops={:.1f} params={} cuda_graphs={} backend=\"{}\"",
      arch, batch, image, image, channels, steps, batch * steps / elapsed, 1e3 * elapsed / steps,
      batch / median, 1e3 * median, 1e3 * times.forward / steps, 1e3 * times.backward / steps,
      1e3 * times.optimizer / steps, step_gflop, step_gflop * steps / elapsed,
      model->store().parameter_count(), step.captures() > 0 ? "on" : "off", choice.reason);
  return 0;
}

}  // namespace dp
