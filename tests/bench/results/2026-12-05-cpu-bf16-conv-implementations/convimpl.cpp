// Lists every oneDNN implementation of each airbench94 bf16 convolution and times each pass.
#include <dnnl.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>
using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;
static double ms_of(stream& s, primitive& p, const std::unordered_map<int, memory>& args, int reps) {
  p.execute(s, args); s.wait();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    p.execute(s, args); s.wait();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}
int main(int argc, char** argv) {
  engine eng(engine::kind::cpu, 0); stream s(eng);
  const int N = 1024;
  struct L { int ci, co, h; int pr; } layers[] = {{24,64,32,0},{64,64,15,1},{64,256,15,0},{256,256,7,1},{256,256,7,0},{256,256,3,1}};
  // h: input size; conv1 of block trimmed (pad 1 before, 0 after) when pr==0 here
  for (auto l : layers) {
    int H = l.h; int padr = l.pr ? 1 : 0; int OH = H + 1 + padr - 2;
    memory::dims src{N, l.ci, H, H}, wei{l.co, l.ci, 3, 3}, dst{N, l.co, OH, OH};
    auto smd = memory::desc(src, dt::bf16, tag::any), wmd = memory::desc(wei, dt::bf16, tag::any), dmd = memory::desc(dst, dt::bf16, tag::any);
    auto wmdf = memory::desc(wei, dt::f32, tag::any);
    convolution_forward::desc fd(prop_kind::forward_training, algorithm::convolution_direct, smd, wmd, dmd, {1,1}, {1,1}, {padr,padr});
    convolution_forward::primitive_desc fpd0(fd, eng);
    std::printf("layer %d->%d @%d out %d\n", l.ci, l.co, H, OH);
    // forward impls
    {
      convolution_forward::primitive_desc pd(fd, eng);
      do {
        if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) break;
        memory S(pd.src_desc(), eng), W(pd.weights_desc(), eng), D(pd.dst_desc(), eng);
        convolution_forward p(pd);
        double t = ms_of(s, p, {{DNNL_ARG_SRC, S}, {DNNL_ARG_WEIGHTS, W}, {DNNL_ARG_DST, D}}, 3);
        std::printf("  fwd  %-40s %8.1f ms\n", pd.impl_info_str(), t);
        if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) break;
      } while (pd.next_impl());
    }
    {
      convolution_backward_data::desc bd(algorithm::convolution_direct, smd, wmd, dmd, {1,1}, {1,1}, {padr,padr});
      convolution_backward_data::primitive_desc pd(bd, eng, fpd0);
      do {
        if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) break;
        memory S(pd.diff_src_desc(), eng), W(pd.weights_desc(), eng), D(pd.diff_dst_desc(), eng);
        convolution_backward_data p(pd);
        double t = ms_of(s, p, {{DNNL_ARG_DIFF_SRC, S}, {DNNL_ARG_WEIGHTS, W}, {DNNL_ARG_DIFF_DST, D}}, 3);
        std::printf("  bwdd %-40s %8.1f ms\n", pd.impl_info_str(), t);
        if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) break;
      } while (pd.next_impl());
    }
    {
      convolution_backward_weights::desc bd(algorithm::convolution_direct, smd, wmdf, dmd, {1,1}, {1,1}, {padr,padr});
      convolution_backward_weights::primitive_desc pd(bd, eng, fpd0);
      do {
        if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) break;
        memory S(pd.src_desc(), eng), W(pd.diff_weights_desc(), eng), D(pd.diff_dst_desc(), eng);
        convolution_backward_weights p(pd);
        double t = ms_of(s, p, {{DNNL_ARG_SRC, S}, {DNNL_ARG_DIFF_WEIGHTS, W}, {DNNL_ARG_DIFF_DST, D}}, 2);
        std::printf("  bwdw %-40s %8.1f ms\n", pd.impl_info_str(), t);
        if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) break;
      } while (pd.next_impl());
    }
    std::fflush(stdout);
  }
}
