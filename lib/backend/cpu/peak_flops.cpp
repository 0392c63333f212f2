// Peak FLOP measurement: C = A B with M = N = K = size on oneDNN's matmul, repeated, best
// time taken (on a shared machine the best repeat is the one least disturbed by neighbours).
#include "backend/cpu/peak_flops.h"

#include <omp.h>

#include <algorithm>
#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/dnnl_check.h"
#include "core/bf16.h"
#include "core/timer.h"

namespace dp::cpu {

namespace {

using dnnl::memory;

// Small bounded values (no denormals or overflow to slow the kernel down), in f32 or bf16, none
// of them zero: AMX runs measurably faster on zero operands than on real data.
void fill(memory& m) {
  const auto type = m.get_desc().data_type();
  const size_t n = m.get_desc().get_size() / (type == memory::data_type::f32 ? 4 : 2);
  for (size_t i = 0; i < n; ++i) {
    const float v = 0.001f * static_cast<float>(i % 17 + 1);
    if (type == memory::data_type::f32)
      static_cast<float*>(m.get_data_handle())[i] = v;
    else
      static_cast<uint16_t*>(m.get_data_handle())[i] = bf16_bits(v);
  }
}

}  // namespace

PeakFlops measure_peak_flops(int threads, int64_t size, int repeats, DType dtype) {
  DP_CHECK(size > 0 && repeats > 0, "peak benchmark needs a positive size and repeat count");
  DP_CHECK(dtype == DType::f32 || dtype == DType::bf16, "peak benchmark: f32 or bf16 only");
  if (threads > 0) omp_set_num_threads(threads);
  return with_dnnl("peak FLOP benchmark", [&] {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    const auto in_type = dtype == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    const memory::desc ad({size, size}, in_type, memory::format_tag::ab);
    const memory::desc bd({size, size}, in_type,
                          dtype == DType::bf16 ? memory::format_tag::any : memory::format_tag::ab);
    const memory::desc cd({size, size}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), engine);
    dnnl::matmul matmul(pd);
    memory a(ad, engine), b_plain(ad, engine), b(pd.weights_desc(), engine), c(cd, engine);
    fill(a);
    fill(b_plain);
    dnnl::reorder(b_plain, b).execute(stream, b_plain, b);
    auto run = [&] {
      matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
      stream.wait();
    };
    run();  // warm-up: page faults, jit
    double best = 1e30;
    for (int i = 0; i < repeats; ++i) {
      const double t0 = now_seconds();
      run();
      best = std::min(best, now_seconds() - t0);
    }
    PeakFlops r;
    r.gflops = 2.0 * static_cast<double>(size) * size * size / best * 1e-9;
    r.size = size;
    r.kernel = pd.impl_info_str();
    r.threads = omp_get_max_threads();
    return r;
  });
}

}  // namespace dp::cpu
