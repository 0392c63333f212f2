// bf16 direct against f32 Winograd (+ bf16<->f32 conversions) for airbench94's 256->256 layers.
#include <dnnl.hpp>
#include <chrono>
#include <cstdio>
#include <string>
using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;
static double ms_of(stream& s, primitive p, const std::unordered_map<int, memory>& args, int reps) {
  p.execute(s, args); s.wait();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    p.execute(s, args); s.wait();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}
struct Times { double f, d, w; };
Times run(engine& eng, stream& s, int N, int ci, int co, int H, int padr, dt act, algorithm alg) {
  int OH = H + 1 + padr - 2;
  memory::dims src{N, ci, H, H}, wei{co, ci, 3, 3}, dst{N, co, OH, OH};
  auto smd = memory::desc(src, act, tag::any), wmd = memory::desc(wei, act, tag::any), dmd = memory::desc(dst, act, tag::any);
  auto wmdf = memory::desc(wei, dt::f32, tag::any);
  convolution_forward::desc fd(prop_kind::forward_training, alg, smd, wmd, dmd, {1,1}, {1,1}, {padr,padr});
  convolution_forward::primitive_desc fpd(fd, eng);
  convolution_backward_data::primitive_desc dpd({alg, smd, wmd, dmd, {1,1}, {1,1}, {padr,padr}}, eng, fpd);
  convolution_backward_weights::primitive_desc wpd({alg, smd, wmdf, dmd, {1,1}, {1,1}, {padr,padr}}, eng, fpd);
  std::printf("    %s | %s | %s\n", fpd.impl_info_str(), dpd.impl_info_str(), wpd.impl_info_str());
  memory S(fpd.src_desc(), eng), W(fpd.weights_desc(), eng), D(fpd.dst_desc(), eng);
  memory dS(dpd.diff_src_desc(), eng), dD(dpd.diff_dst_desc(), eng), dW(wpd.diff_weights_desc(), eng), dD2(wpd.diff_dst_desc(), eng), S2(wpd.src_desc(), eng);
  Times t;
  t.f = ms_of(s, convolution_forward(fpd), {{DNNL_ARG_SRC, S}, {DNNL_ARG_WEIGHTS, W}, {DNNL_ARG_DST, D}}, 4);
  t.d = ms_of(s, convolution_backward_data(dpd), {{DNNL_ARG_DIFF_SRC, dS}, {DNNL_ARG_WEIGHTS, W}, {DNNL_ARG_DIFF_DST, dD}}, 4);
  t.w = ms_of(s, convolution_backward_weights(wpd), {{DNNL_ARG_SRC, S2}, {DNNL_ARG_DIFF_WEIGHTS, dW}, {DNNL_ARG_DIFF_DST, dD2}}, 4);
  return t;
}
double conv_ms(engine& eng, stream& s, memory::dims d) {
  memory a(memory::desc(d, dt::bf16, tag::nChw16c), eng), b(memory::desc(d, dt::f32, tag::nChw16c), eng);
  return ms_of(s, reorder(a, b), {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}}, 4) +
         ms_of(s, reorder(b, a), {{DNNL_ARG_FROM, b}, {DNNL_ARG_TO, a}}, 4);
}
int main() {
  engine eng(engine::kind::cpu, 0); stream s(eng);
  const int N = 1024;
  struct L { const char* name; int ci, co, h, padr; } layers[] = {
      {"b2.conv2 256->256@7", 256, 256, 7, 1}, {"b3.conv1 256->256@7 (trim)", 256, 256, 7, 0},
      {"b3.conv2 256->256@3", 256, 256, 3, 1}, {"b2.conv1 64->256@15 (trim)", 64, 256, 15, 0},
      {"b1.conv2 64->64@15", 64, 64, 15, 1}};
  for (int rep = 0; rep < 2; ++rep)
  for (auto l : layers) {
    std::printf("%s\n", l.name);
    Times b = run(eng, s, N, l.ci, l.co, l.h, l.padr, dt::bf16, algorithm::convolution_direct);
    std::printf("  bf16 direct  %6.1f %6.1f %6.1f = %6.1f\n", b.f, b.d, b.w, b.f + b.d + b.w);
    Times w = run(eng, s, N, l.ci, l.co, l.h, 1, dt::f32, algorithm::convolution_winograd);
    double c_in = conv_ms(eng, s, {N, l.ci, l.h, l.h}), c_out = conv_ms(eng, s, {N, l.co, l.h, l.h});
    std::printf("  f32 wino     %6.1f %6.1f %6.1f = %6.1f  + conversions x(in,back) %5.1f y(out,back) %5.1f\n", w.f, w.d, w.w, w.f + w.d + w.w, c_in, c_out);
    std::fflush(stdout);
  }
}
