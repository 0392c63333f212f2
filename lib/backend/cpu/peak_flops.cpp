// Peak FLOP measurement: C = A B with M = N = K = size on oneDNN's matmul, repeated, best
// time taken (on a shared machine the best repeat is the one least disturbed by neighbours).
#include "backend/cpu/peak_flops.h"

#include <omp.h>

#include <algorithm>
#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/dnnl_check.h"
#include "core/timer.h"

namespace dp::cpu {

PeakFlops measure_peak_flops(int threads, int64_t size, int repeats) {
  DP_CHECK(size > 0 && repeats > 0, "peak benchmark needs a positive size and repeat count");
  if (threads > 0) omp_set_num_threads(threads);
  return with_dnnl("peak FLOP benchmark", [&] {
    using dnnl::memory;
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    memory::desc md({size, size}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md, md, md), engine);
    dnnl::matmul matmul(pd);
    memory a(md, engine), b(md, engine), c(md, engine);
    // Small bounded values: no denormals or overflow to slow the kernel down.
    for (memory* m : {&a, &b}) {
      float* p = static_cast<float*>(m->get_data_handle());
      for (int64_t i = 0; i < size * size; ++i) p[i] = 0.001f * static_cast<float>(i % 17);
    }
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
