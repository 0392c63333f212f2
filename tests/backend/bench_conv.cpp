// Micro-benchmark (not a test): forward + backward (data and weights) of convolutions on the CPU
// backend, each geometry timed with oneDNN's convolution kernels and, where the geometry is
// lowered to GEMM (conv_as_gemm.h), with that lowering; prints milliseconds and GFLOP/s.
// Usage: bench_conv [iterations=10] [threads=0 (OpenMP default)] [n,h,w,cin,cout,k,s,p ...]
// Without geometries: the ResNet-18-CIFAR 3x3 64->64 convolution at 32x32, batch 128.
// Prints the mean and the best iteration: on a shared machine the best is the steadier number.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/timer.h"

namespace {

struct Timing {
  double mean_fwd, mean_bwd, best_step;
};

Timing time_conv(dp::Backend& be, const dp::Conv2dGeometry& g, int iters) {
  dp::Tensor x = be.allocate({g.n, g.h, g.w, g.c_in});
  dp::Tensor w = be.allocate({g.c_out, g.c_in, g.kernel, g.kernel});
  dp::Tensor y = be.allocate({g.n, g.out_h(), g.out_w(), g.c_out});
  dp::Tensor dy = be.allocate(y.shape()), dx = be.allocate(x.shape()),
             dw = be.allocate(w.shape());
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (dp::Tensor* t : {&x, &w, &dy})
    for (int64_t i = 0; i < t->numel(); ++i) t->data()[i] = dist(gen);
  be.conv2d_forward(g, x, w, y);  // warm-up: builds and caches the primitives
  be.conv2d_backward(g, x, w, dy, &dx, dw);
  Timing t{0, 0, 1e30};
  for (int i = 0; i < iters; ++i) {
    double t0 = dp::now_seconds();
    be.conv2d_forward(g, x, w, y);
    double t1 = dp::now_seconds();
    be.conv2d_backward(g, x, w, dy, &dx, dw);
    double t2 = dp::now_seconds();
    t.mean_fwd += (t1 - t0) / iters;
    t.mean_bwd += (t2 - t1) / iters;
    t.best_step = std::min(t.best_step, t2 - t0);
  }
  return t;
}

void print(const char* impl, const dp::Conv2dGeometry& g, const Timing& t) {
  // One multiply-add = 2 FLOPs; forward, backward-data and backward-weights cost the same.
  const double pass = 2.0 * g.n * g.out_h() * g.out_w() * g.c_out * g.c_in * g.kernel * g.kernel;
  std::printf(
      "n%-4ld %3ldx%-3ld %4ld->%-4ld k%ld s%ld p%ld  %-6s fwd %7.2f ms %6.1f GFLOP/s  bwd %7.2f ms "
      "%6.1f GFLOP/s  best fwd+bwd %7.2f ms %6.1f GFLOP/s\n",
      long(g.n), long(g.h), long(g.w), long(g.c_in), long(g.c_out), long(g.kernel), long(g.stride),
      long(g.pad), impl, 1e3 * t.mean_fwd, pass / t.mean_fwd * 1e-9, 1e3 * t.mean_bwd,
      2 * pass / t.mean_bwd * 1e-9, 1e3 * t.best_step, 3 * pass / t.best_step * 1e-9);
}

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 10;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  std::vector<dp::Conv2dGeometry> shapes;
  for (int i = 3; i < argc; ++i) {
    dp::Conv2dGeometry g{};
    long v[8];
    if (std::sscanf(argv[i], "%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld", &v[0], &v[1], &v[2], &v[3], &v[4],
                    &v[5], &v[6], &v[7]) != 8) {
      std::fprintf(stderr, "bench_conv: geometry '%s' is not n,h,w,cin,cout,k,s,p\n", argv[i]);
      return 2;
    }
    g = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    shapes.push_back(g);
  }
  if (shapes.empty()) shapes.push_back({128, 32, 32, 64, 64, 3, 1, 1});

  dp::cpu::CpuConvOptions onednn_only;
  onednn_only.gemm_small_maps = false;
  dp::cpu::CpuBackend onednn(threads, onednn_only), lowered(threads);
  std::printf("%s, %d iterations\n", onednn.name().c_str(), iters);
  for (const dp::Conv2dGeometry& g : shapes) {
    print("oneDNN", g, time_conv(onednn, g, iters));
    if (lowered.conv_runs_as_gemm(g)) print("GEMM", g, time_conv(lowered, g, iters));
  }
  return 0;
}
