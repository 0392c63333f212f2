// Micro-benchmark (not a test): forward + backward (data and weights) of the ResNet-18-CIFAR
// 3x3 64->64 convolution at 32x32, batch 128, on the CPU backend; prints GFLOP/s.
// Usage: bench_conv [iterations=10] [threads=0 (OpenMP default)]
// Prints the mean and the best iteration: on a shared machine the best is the steadier number.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "backend/backend.h"
#include "core/timer.h"

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 10;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  auto be = dp::make_cpu_backend(threads);
  const dp::Conv2dGeometry g{128, 32, 32, 64, 64, 3, 1, 1};
  dp::Tensor x = be->allocate({g.n, g.h, g.w, g.c_in});
  dp::Tensor w = be->allocate({g.c_out, g.c_in, g.kernel, g.kernel});
  dp::Tensor y = be->allocate({g.n, g.out_h(), g.out_w(), g.c_out});
  dp::Tensor dy = be->allocate(y.shape()), dx = be->allocate(x.shape()),
             dw = be->allocate(w.shape());
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (dp::Tensor* t : {&x, &w, &dy})
    for (int64_t i = 0; i < t->numel(); ++i) t->data()[i] = dist(gen);

  // One multiply-add = 2 FLOPs; forward, backward-data and backward-weights cost the same.
  const double pass_flops =
      2.0 * g.n * g.out_h() * g.out_w() * g.c_out * g.c_in * g.kernel * g.kernel;
  be->conv2d_forward(g, x, w, y);  // warm-up: builds and caches the primitives
  be->conv2d_backward(g, x, w, dy, &dx, dw);

  double t_fwd = 0, t_bwd = 0, best_fwd = 1e30, best_bwd = 1e30, best_step = 1e30;
  for (int i = 0; i < iters; ++i) {
    double t0 = dp::now_seconds();
    be->conv2d_forward(g, x, w, y);
    double t1 = dp::now_seconds();
    be->conv2d_backward(g, x, w, dy, &dx, dw);
    double t2 = dp::now_seconds();
    t_fwd += t1 - t0;
    t_bwd += t2 - t1;
    best_fwd = std::min(best_fwd, t1 - t0);
    best_bwd = std::min(best_bwd, t2 - t1);
    best_step = std::min(best_step, t2 - t0);
  }
  std::printf("%s\n", be->name().c_str());
  std::printf("conv 3x3 64->64 32x32 batch 128, %d iterations\n", iters);
  std::printf("forward : %8.2f ms  %7.1f GFLOP/s\n", 1e3 * t_fwd / iters,
              pass_flops * iters / t_fwd * 1e-9);
  std::printf("backward: %8.2f ms  %7.1f GFLOP/s (data + weights)\n", 1e3 * t_bwd / iters,
              2 * pass_flops * iters / t_bwd * 1e-9);
  std::printf("fwd+bwd : %8.2f ms  %7.1f GFLOP/s\n", 1e3 * (t_fwd + t_bwd) / iters,
              3 * pass_flops * iters / (t_fwd + t_bwd) * 1e-9);
  std::printf("best    : fwd %.1f GFLOP/s, bwd %.1f GFLOP/s, fwd+bwd %.2f ms = %.1f GFLOP/s\n",
              pass_flops / best_fwd * 1e-9, 2 * pass_flops / best_bwd * 1e-9, 1e3 * best_step,
              3 * pass_flops / best_step * 1e-9);
  return 0;
}
