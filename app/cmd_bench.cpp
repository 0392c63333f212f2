// `dptrain bench`: times full training steps (forward, loss, backward, SGD update) of a model
// on synthetic data, with warm-up steps excluded, and prints images/s, the split of a step and
// the achieved GFLOP/s (convolution and linear multiply-adds: forward + backward = 3x forward).
// `--peak` measures the machine's attainable GFLOP/s instead (a large oneDNN matrix multiply).
// tests/bench/bench_vs_pytorch.sh runs it beside PyTorch on the same machine.
#include <algorithm>
#include <boost/program_options.hpp>
#include <random>
#include <set>
#include <vector>

#include "app/agreed_parse.h"
#include "app/commands.h"
#include "app/parse_options.h"
#include "backend/cpu/peak_flops.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "core/timer.h"
#include "nn/model.h"
#include "nn/shortcut_kind.h"
#include "optim/sgd.h"
#include "train/backend_choice.h"
#include "train/command_line.h"
#include "train/cpu_backend_setup.h"
#include "train/forward_backward.h"

namespace po = boost::program_options;

namespace dp {

namespace {

struct BenchOptions {
  std::string arch = "resnet50";
  nn::ShortcutKind shortcut = nn::ShortcutKind::arch_default;
  bool peak = false, cuda_graphs = true;
  int64_t batch = 128, image = 32, channels = 3, classes = 10;
  int steps = 20, warmup = 3;
  DeviceOptions device;
};

po::options_description describe(BenchOptions& o) {
  po::options_description desc("dptrain bench options");
  desc.add_options()
      ("help,h", "print this help")
      ("arch", po::value(&o.arch)->default_value(o.arch), "model name")
      ("shortcut", po::value<std::string>()->default_value("auto")->notifier(
           [&o](const std::string& v) { o.shortcut = nn::parse_shortcut(v); }),
       "A|B|auto, as dptrain train's --shortcut")
      ("batch-size", po::value(&o.batch)->default_value(o.batch), "batch size")
      ("image-size", po::value(&o.image)->default_value(o.image), "square image side")
      ("channels", po::value(&o.channels)->default_value(o.channels), "image channels")
      ("classes", po::value(&o.classes)->default_value(o.classes), "classes")
      ("steps", po::value(&o.steps)->default_value(o.steps), "timed steps")
      ("warmup", po::value(&o.warmup)->default_value(o.warmup), "untimed steps first")
      ("cuda-graphs", bool_option(o.cuda_graphs),
       "CUDA: replay forward, loss and backward as one captured graph (as dptrain train)")
      ("peak", po::bool_switch(&o.peak), "CPU: measure the peak GFLOP/s (large matmul; bf16 with --precision bf16) and exit");
  add_device_options(desc, o.device);
  return desc;
}

// Random normal images and uniform labels on the backend's device.
void fill_synthetic_batch(Backend& backend, int64_t classes, Tensor& images, Tensor& labels) {
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  std::vector<float> host_images(images.numel());
  std::vector<int32_t> host_labels(labels.numel());
  for (auto& v : host_images) v = normal(rng);
  for (auto& v : host_labels) v = static_cast<int32_t>(rng() % classes);
  backend.copy_from_host(host_images.data(), images);
  backend.copy_from_host(host_labels.data(), labels);
}

struct BenchTimes {
  PhaseTimes phases;                 // of the timed steps
  std::vector<double> step_seconds;  // for the median: robust to a shared machine's stalls
  double elapsed = 0;
  int64_t macs_per_step = 0;
};

// One step as `dptrain train` runs it, graphs included (a graph step's backward is inside its
// forward time), each phase waited for so its time is its own.
void timed_step(Backend& backend, ForwardBackward& step, optim::Sgd& sgd, const Tensor& images,
                const Tensor& labels, PhaseTimes& times) {
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
  ScopedTimer t(times.optimizer);
  sgd.step(0.01f);
  backend.synchronize();
}

BenchTimes run_steps(const BenchOptions& o, Backend& backend, nn::Model& model,
                     ForwardBackward& step, const Tensor& images, const Tensor& labels) {
  optim::Sgd sgd(backend, model.params(), model.grads(), Tensor(), SgdHyper{});
  BenchTimes times;
  double start = 0;
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    if (i == o.warmup) {
      backend.synchronize();
      times.phases.reset();
      start = now_seconds();
    }
    const double step_start = now_seconds();
    timed_step(backend, step, sgd, images, labels, times.phases);
    if (i == 0) times.macs_per_step = model.store().forward_macs();  // an eager step counts them
    if (i >= o.warmup) times.step_seconds.push_back(now_seconds() - step_start);
  }
  times.elapsed = now_seconds() - start;
  return times;
}

void report(const BenchOptions& o, BenchTimes& t, int64_t params, bool graphs,
            const std::string& backend) {
  const int steps = o.steps;
  std::nth_element(t.step_seconds.begin(), t.step_seconds.begin() + steps / 2, t.step_seconds.end());
  const double median = t.step_seconds[steps / 2];  // the upper median for an even count
  // fwd + bwd-data + bwd-weights: three passes of 2 FLOPs per multiply-add.
  const double step_gflop = 6.0 * static_cast<double>(t.macs_per_step) * 1e-9;
  log::info(
      "bench arch={} batch={} image={}x{}x{} steps={} images_per_sec={:.1f} step_ms={:.1f} "
      "median_images_per_sec={:.1f} median_step_ms={:.1f} forward_ms={:.1f} backward_ms={:.1f} "
      "optimizer_ms={:.1f} gflop_per_step={:.2f} "
      "gflops={:.1f} params={} cuda_graphs={} backend=\"{}\"",
      o.arch, o.batch, o.image, o.image, o.channels, steps, o.batch * steps / t.elapsed,
      1e3 * t.elapsed / steps, o.batch / median, 1e3 * median, 1e3 * t.phases.forward / steps,
      1e3 * t.phases.backward / steps, 1e3 * t.phases.optimizer / steps, step_gflop,
      step_gflop * steps / t.elapsed, params, graphs ? "on" : "off", backend);
}

// The ranges of the options (the model's, the steps', the device's). The upper bounds keep
// every tensor's element count inside int64 (an input of at most 2^52 values, activations of
// up to 2^11 times its channels); what still does not fit in memory ends as main's
// out-of-memory line.
void validate_bench_options(const BenchOptions& o) {
  const double input_values = double(o.batch) * double(o.image) * double(o.image) * o.channels;
  const std::pair<bool, const char*> checks[] = {
      {o.batch >= 1 && o.batch <= (int64_t{1} << 30), "--batch-size: must be in [1, 2^30]"},
      {o.image >= 1 && o.image <= (1 << 16), "--image-size: must be in [1, 65536]"},
      {o.channels >= 1 && o.channels <= (1 << 16), "--channels: must be in [1, 65536]"},
      {o.classes >= 2 && o.classes <= (int64_t{1} << 24), "--classes: must be in [2, 2^24]"},
      {input_values <= 0x1p52,
       "--batch-size: a batch of --image-size^2 x --channels values each must hold at most 2^52"},
      // Their sum is the loop's count, an int, and each timed step keeps its time.
      {o.steps >= 1 && o.steps <= 1000000, "--steps: must be in [1, 1000000]"},
      {o.warmup >= 0 && o.warmup <= 1000000, "--warmup: must be in [0, 1000000]"}};
  for (const auto& [ok, problem] : checks)
    if (!ok) throw UsageError(fmt::format("option {}", problem));
  validate_device_options(o.device);
}

// --peak: the CPU's matmul peak on the rank's threads as training takes them. A model's or a
// GPU's options would be passed over silently, so they are refused.
int run_peak(const BenchOptions& o, const std::set<std::string>& given, MpiSession& mpi) {
  for (const std::string& option : given)
    if (option != "peak" && option != "precision" && option != "threads" &&
        option != "pin-threads" && !(option == "device" && o.device.device != DeviceRequest::cuda))
      throw UsageError(fmt::format("option --{}: not for --peak, which measures the CPU's "
                                   "matmul peak (--precision, --threads and --pin-threads "
                                   "apply)",
                                   option));
  if (o.device.precision == Precision::tf32)
    throw UsageError("dptrain bench --peak: --precision is fp32 or bf16 on the CPU");
  const DType dtype = o.device.precision == Precision::bf16 ? DType::bf16 : DType::f32;
  if (dtype == DType::bf16 && !cpu_has_native_bf16())
    throw UsageError("dptrain bench --peak --precision bf16: this CPU has no bf16 arithmetic "
                     "(neither AVX512-BF16 nor AMX)");
  const CpuTeam team =
      take_cpu_team(o.device.threads, o.device.pin_threads, mpi.local_rank(), mpi.local_size());
  cpu::PeakFlops p = cpu::measure_peak_flops(team.threads, 2048, 10, dtype);
  log::info("peak gflops={:.1f} matmul={}x{}x{} dtype={} kernel={} threads={}", p.gflops, p.size,
            p.size, p.size, dtype == DType::bf16 ? "bf16" : "f32", p.kernel, p.threads);
  return 0;
}

}  // namespace

int run_bench(const std::vector<std::string>& args, MpiSession& mpi) {
  BenchOptions o;
  po::options_description desc = describe(o);
  std::set<std::string> given;
  const bool parsed = parse_on_every_rank([&] {
    if (!parse_options(args, desc, "usage: dptrain bench [--arch NAME] [--batch-size N]", &given))
      return false;
    validate_bench_options(o);
    return true;
  });
  if (!parsed) return 0;
  if (o.peak) return run_peak(o, given, mpi);
  BackendChoice choice = choose_backend(o.device, mpi.local_rank(), mpi.local_size(), o.arch);
  Backend& backend = *choice.backend;
  nn::ModelSpec spec;
  spec.arch = o.arch;
  spec.shortcut = o.shortcut;
  spec.num_classes = o.classes;
  spec.in_channels = o.channels;
  if (const std::string problem = nn::input_size_problem(o.arch, o.image, o.image);
      !problem.empty())
    throw UsageError(fmt::format("option --image-size: {}", problem));
  auto model = nn::make_model(spec, backend);
  Tensor images = backend.allocate({o.batch, o.image, o.image, o.channels});
  Tensor labels = backend.allocate({o.batch}, DType::i32);
  fill_synthetic_batch(backend, o.classes, images, labels);
  ForwardBackward step(*model, backend, 0.0f, o.cuda_graphs, o.batch);
  BenchTimes times = run_steps(o, backend, *model, step, images, labels);
  report(o, times, model->store().parameter_count(), step.captures() > 0, choice.reason);
  return 0;
}

}  // namespace dp
