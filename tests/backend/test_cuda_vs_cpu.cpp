// The CUDA backend against the CPU backend on the same inputs: every op (forward and backward)
// on ResNet layer shapes, the algorithm cache (in the process and in a file), the backend
// augmentation against the host Augmenter, and one whole ResNet-50 training step (logits, loss,
// every gradient, updated weights and running statistics). Strict FP32 on the GPU, so differences
// are rounding only.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "../data/augment_reference.h"
#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "damped_resnet50.h"
#include "data/augment.h"
#include "nn/model.h"
#include "optim/sgd.h"
#include "test_util.h"
#include "train/device_batch.h"
#include "twin_sgd.h"

namespace dp::test {
namespace {

// Rows of `logits` (f32, [n, k]) whose two largest values are within `tol` of the whole
// tensor's largest magnitude: there two backends may pick different classes.
int64_t near_tie_rows(const Tensor& logits, double tol) {
  const int64_t n = logits.dim(0), k = logits.dim(1);
  double scale = 0;
  for (int64_t i = 0; i < n * k; ++i) scale = std::max(scale, double(std::abs(logits.data()[i])));
  int64_t ties = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (k < 2) continue;
    std::vector<float> row(logits.data() + r * k, logits.data() + (r + 1) * k);
    std::partial_sort(row.begin(), row.begin() + 2, row.end(), std::greater<float>());
    if (row[0] - row[1] <= tol * scale) ++ties;
  }
  return ties;
}

class CudaVsCpu : public ::testing::Test {
 protected:
  CudaVsCpu() : cpu(make_cpu_backend()), cuda(make_cuda_backend(CudaOptions{})) {}

  Tensor up(const Tensor& host) {
    Tensor d = cuda->allocate(host.shape(), host.dtype());
    cuda->copy_from_host(host.data<void>(), d);
    return d;
  }
  Tensor down(const Tensor& device) {
    Tensor h = Tensor::empty(device.shape(), device.dtype());
    cuda->copy_to_host(device, h.data<void>());
    return h;
  }
  void expect_close(const char* what, const Tensor& device, const Tensor& host, double tol) {
    ASSERT_EQ(device.shape(), host.shape()) << what;
    Tensor h = down(device);
    EXPECT_LE(relative_max_error(h, host), tol) << what;  // tol 0: bit for bit
  }

  // One training step (loss with label smoothing `smoothing`, backward, SGD at lr 0.1) of two
  // models with the same weights on the same batch: logits within 1e-3 and the loss within
  // 1e-4 relative, each trainable parameter's gradient within 5e-3 max-relative, every
  // untrainable one's gradient exactly 0, the updated weights and running statistics within
  // 1e-4.
  void compare_training_step(nn::Model& cpu_model, nn::Model& cuda_model, const Tensor& images,
                             const Tensor& labels, float smoothing, SgdHyper hyper) {
    TwinSgd sgd(*cpu, cpu_model, *cuda, cuda_model, hyper);
    const Tensor& logits = cpu_model.forward(images, true);
    Tensor dlogits, cdlogits;
    int64_t hits = 0, chits = 0;
    float loss = cpu->softmax_cross_entropy(logits, labels, smoothing, dlogits, hits);
    Tensor gimages = up(images), glabels = up(labels);
    const Tensor& clogits = cuda_model.forward(gimages, true);
    float closs = cuda->softmax_cross_entropy(clogits, glabels, smoothing, cdlogits, chits);
    expect_close("logits", clogits, logits, 1e-3);
    EXPECT_NEAR(closs, loss, 1e-4 * std::abs(loss));
    EXPECT_LE(std::abs(chits - hits), near_tie_rows(logits, 2e-3))
        << "hits " << chits << " against " << hits << " on the CPU";

    cpu_model.backward(dlogits);
    cuda_model.backward(cdlogits);
    const nn::ParameterStore& store = cpu_model.store();
    Tensor grads = down(cuda_model.grads());
    for (nn::ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
      const nn::StateEntry& e = store.entry(id);
      if (e.kind != nn::StateKind::parameter) continue;
      Tensor mine = Tensor::view(grads.data() + e.offset, e.shape);
      Tensor ref = Tensor::view(cpu_model.grads().data() + e.offset, e.shape);
      if (e.trainable) {
        EXPECT_LT(relative_max_error(mine, ref), 5e-3) << "gradient of " << e.name;
      } else {
        for (int64_t i = 0; i < mine.numel(); ++i) ASSERT_EQ(mine.data()[i], 0.f) << e.name;
      }
    }
    sgd.step(0.1f);
    expect_close("updated weights", cuda_model.params(), cpu_model.params(), 1e-4);
    expect_close("running statistics", cuda_model.buffers(), cpu_model.buffers(), 1e-4);
  }

  std::unique_ptr<Backend> cpu, cuda;
};

TEST_F(CudaVsCpu, Convolution) {
  const Conv2dGeometry shapes[] = {
      {4, 32, 32, 3, 64, 7, 2, 3},  {4, 16, 16, 3, 16, 3, 1, 1},  {4, 8, 8, 64, 64, 3, 1, 1},
      {4, 8, 8, 64, 128, 3, 2, 1},  {4, 8, 8, 64, 128, 1, 2, 0},  {4, 4, 4, 256, 64, 1, 1, 0},
      {4, 4, 4, 1024, 2048, 1, 2, 0}, {4, 7, 7, 32, 32, 3, 2, 1},
  };
  for (const auto& g : shapes) {
    SCOPED_TRACE(fmt::format("{}x{} {}->{} k{} s{}", g.h, g.w, g.c_in, g.c_out, g.kernel, g.stride));
    std::mt19937 gen(1);
    Tensor x = random_tensor({g.n, g.h, g.w, g.c_in}, gen);
    Tensor w = random_tensor({g.c_out, g.c_in, g.kernel, g.kernel}, gen);
    Tensor dy = random_tensor({g.n, g.out_h(), g.out_w(), g.c_out}, gen);
    Tensor y, dx, dw, cy, cdx, cdw;
    cpu->conv2d_forward(g, x, w, y);
    cpu->conv2d_backward(g, x, w, dy, &dx, dw);
    Tensor gx = up(x), gw = up(w), gdy = up(dy);
    cuda->conv2d_forward(g, gx, gw, cy);
    cuda->conv2d_backward(g, gx, gw, gdy, &cdx, cdw);
    // cuDNN may pick FFT or Winograd algorithms: rounding differs more than a direct sum's.
    expect_close("y", cy, y, 1e-4);
    expect_close("dx", cdx, dx, 1e-4);
    expect_close("dw", cdw, dw, 1e-4);
  }
}

TEST_F(CudaVsCpu, ConvolutionAlgorithmCacheIsReused) {
  auto* be = dynamic_cast<cuda::CudaBackend*>(cuda.get());
  ASSERT_NE(be, nullptr);
  Conv2dGeometry g{4, 8, 8, 16, 32, 3, 1, 1};
  std::mt19937 gen(9);
  Tensor x = up(random_tensor({4, 8, 8, 16}, gen)), w = up(random_tensor({32, 16, 3, 3}, gen));
  Tensor dy = up(random_tensor({4, 8, 8, 32}, gen));
  Tensor y1, y2, dx1, dx2, dw1, dw2;
  cuda->conv2d_forward(g, x, w, y1);
  cuda->conv2d_backward(g, x, w, dy, &dx1, dw1);
  EXPECT_EQ(be->cached_algorithm_entries(), 3u);
  cuda->conv2d_forward(g, x, w, y2);
  cuda->conv2d_backward(g, x, w, dy, &dx2, dw2);
  EXPECT_EQ(be->cached_algorithm_entries(), 3u);
  EXPECT_EQ(relative_max_error(down(y2), down(y1)), 0.0);
  EXPECT_EQ(relative_max_error(down(dw2), down(dw1)), 0.0);
}

// DPTRAIN_CUDNN_ALGORITHM_CACHE's file: a backend that searched writes one choice per
// direction; a later one takes them without searching (the file is not rewritten), replaces a
// choice cuDNN refuses (algorithm 99) by a search, and computes what the CPU computes.
TEST_F(CudaVsCpu, ConvolutionAlgorithmsComeBackFromTheCacheFile) {
  const std::string file =
      ::testing::TempDir() + "dp_cudnn_algorithms." + std::to_string(getpid()) + ".txt";
  std::remove(file.c_str());
  CudaOptions options;
  options.algorithm_cache = file;
  const Conv2dGeometry g{4, 8, 8, 16, 32, 3, 1, 1};
  std::mt19937 gen(10);
  const Tensor x = random_tensor({4, 8, 8, 16}, gen), w = random_tensor({32, 16, 3, 3}, gen);
  const Tensor dy = random_tensor({4, 8, 8, 32}, gen);
  Tensor y, dx, dw;
  cpu->conv2d_forward(g, x, w, y);
  cpu->conv2d_backward(g, x, w, dy, &dx, dw);
  const auto read = [&] {
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  const auto convolve_on_a_new_backend = [&] {
    cuda = make_cuda_backend(options);
    Tensor cy, cdx, cdw, gx = up(x), gw = up(w), gdy = up(dy);
    cuda->conv2d_forward(g, gx, gw, cy);
    cuda->conv2d_backward(g, gx, gw, gdy, &cdx, cdw);
    expect_close("y", cy, y, 1e-4);
    expect_close("dx", cdx, dx, 1e-4);
    expect_close("dw", cdw, dw, 1e-4);
  };
  const auto inode = [&] {
    struct stat st {};
    return ::stat(file.c_str(), &st) == 0 ? st.st_ino : ino_t{0};
  };
  convolve_on_a_new_backend();
  const std::vector<std::string> searched = read();
  ASSERT_EQ(searched.size(), 5u) << "format, context and 3 choices";
  const ino_t written = inode();
  convolve_on_a_new_backend();
  // Every write renames a new file into place: the same inode means nothing was written.
  EXPECT_EQ(inode(), written) << "every choice found: nothing searched, nothing written";
  EXPECT_EQ(read(), searched);
  std::vector<std::string> refused = searched;
  const auto forward = std::find_if(refused.begin() + 2, refused.end(),
                                    [](const std::string& l) { return l.rfind("0,", 0) == 0; });
  ASSERT_NE(forward, refused.end());
  *forward = forward->substr(0, forward->find(' ')) + " 99 0";
  {
    std::ofstream out(file);
    for (const std::string& line : refused) out << line << "\n";
  }
  convolve_on_a_new_backend();
  const std::vector<std::string> rewritten = read();
  ASSERT_EQ(rewritten.size(), 5u);
  EXPECT_NE(inode(), written) << "algorithm 99 refused, searched again and written back";
  for (size_t i = 0; i < rewritten.size(); ++i) {
    if (refused[i] != *forward) {
      EXPECT_EQ(rewritten[i], refused[i]) << "the other lines kept";
    }
  }
  EXPECT_EQ(std::count_if(rewritten.begin(), rewritten.end(),
                          [](const std::string& l) { return l.find(" 99 ") != std::string::npos; }),
            0);
  std::remove(file.c_str());
}

// (fused ReLU, cuDNN's persistent training mode through the Ex calls). The per-channel
// operands are views into one flat buffer, as a model lays them out: at a 16-byte boundary
// (persistent where asked for), 4 bytes off it (the plain calls, as persistent needs 16-byte
// alignment), and the forward's aligned with the gradients of gamma and beta off (a persistent
// forward, then the plain backward on the statistics it saved).
class CudaVsCpuBatchNorm : public CudaVsCpu,
                           public ::testing::WithParamInterface<std::tuple<bool, bool>> {};

TEST_P(CudaVsCpuBatchNorm, TrainInferenceBackward) {
  CudaOptions options;
  options.batchnorm_persistent = std::get<1>(GetParam());
  cuda = make_cuda_backend(options);
  for (const BatchNormGeometry& shape :
       {BatchNormGeometry{8, 4, 4, 16}, BatchNormGeometry{8, 4, 4, 64},
        BatchNormGeometry{32, 16, 16, 64}}) {  // the last as ResNet-50's first stage, scaled
    BatchNormGeometry g = shape;
    const int64_t c = g.c;
    g.fuse_relu = std::get<0>(GetParam());
    std::mt19937 gen(2);
    Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 3.f);
    Tensor gamma = random_tensor({c}, gen, 0.5f, 1.5f), beta = random_tensor({c}, gen);
    Tensor rm = random_tensor({c}, gen), rv = random_tensor({c}, gen, 0.5f, 2.f);
    Tensor dy = random_tensor(x.shape(), gen);
    const std::vector<float> rm0(rm.data(), rm.data() + c), rv0(rv.data(), rv.data() + c);
    Tensor y, sm, sv, ws, dx, dg, db;
    cpu->batchnorm_forward_train(g, x, gamma, beta, rm, rv, y, sm, sv, ws);
    cpu->batchnorm_backward(g, x, dy, gamma, beta, sm, sv, ws, dx, dg, db);
    Tensor yi;
    cpu->batchnorm_forward_inference(g, x, gamma, beta, rm, rv, yi);
    Tensor gx = up(x), gdy = up(dy);
    // Floats from the flat buffer's 256-byte-aligned start.
    struct Offsets {
      int64_t forward, gradients;
    };
    for (const Offsets o : {Offsets{0, 0}, Offsets{1, 1}, Offsets{0, 1}}) {
      SCOPED_TRACE(testing::Message()
                   << g.n << "x" << g.h << "x" << g.w << "x" << c << ", forward operands at float "
                   << o.forward << ", gradients at float " << o.gradients);
      // gamma, beta, running mean and variance, and the gradients of gamma and beta.
      Tensor flat = cuda->allocate({6 * c + 1});
      auto at = [&](int i) {
        const int64_t offset = i < 4 ? o.forward : o.gradients;
        return Tensor::view(flat.data() + offset + i * c, {c}, DType::f32, Device::cuda);
      };
      Tensor gg = at(0), gb = at(1), grm = at(2), grv = at(3), cdg = at(4), cdb = at(5);
      cuda->copy_from_host(gamma.data<void>(), gg);
      cuda->copy_from_host(beta.data<void>(), gb);
      cuda->copy_from_host(rm0.data(), grm);
      cuda->copy_from_host(rv0.data(), grv);
      Tensor cy, csm, csv, cws, cdx;
      cuda->batchnorm_forward_train(g, gx, gg, gb, grm, grv, cy, csm, csv, cws);
      cuda->batchnorm_backward(g, gx, gdy, gg, gb, csm, csv, cws, cdx, cdg, cdb);
      if (o.forward == 0 && options.batchnorm_persistent && g.n * g.h * g.w >= 4096) {
        auto* be = dynamic_cast<cuda::CudaBackend*>(cuda.get());
        ASSERT_NE(be, nullptr);
        EXPECT_TRUE(be->batchnorm_runs_persistent(g, DType::f32))
            << "cuDNN refused the persistent mode for a first-stage shape: the option does nothing";
        EXPECT_GT(cws.bytes(), 0u) << "the forward ran plain: the backward's case is not tested";
      }
      expect_close("y", cy, y, 1e-5);
      expect_close("running_mean", grm, rm, 1e-5);
      expect_close("running_var (unbiased update)", grv, rv, 1e-5);
      expect_close("dx", cdx, dx, 1e-4);
      expect_close("dgamma", cdg, dg, 1e-4);
      expect_close("dbeta", cdb, db, 1e-4);
      Tensor cyi;
      cuda->batchnorm_forward_inference(g, gx, gg, gb, grm, grv, cyi);
      expect_close("inference y", cyi, yi, 1e-5);
    }
  }
}
INSTANTIATE_TEST_SUITE_P(FuseReluPersistent, CudaVsCpuBatchNorm,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()));

TEST_F(CudaVsCpu, ElementwisePoolingLinear) {
  std::mt19937 gen(3);
  Tensor a = random_tensor({4, 8, 8, 32}, gen), b = random_tensor({4, 8, 8, 32}, gen);
  Tensor ga = up(a), gb = up(b);
  Tensor y, cy, d, cd;
  cpu->relu_forward(a, y);
  cuda->relu_forward(ga, cy);
  expect_close("relu", cy, y, 0);
  cpu->relu_backward(y, b, d);
  cuda->relu_backward(cy, gb, cd);
  expect_close("relu backward", cd, d, 0);
  cpu->add_relu_forward(a, b, y);
  cuda->add_relu_forward(ga, gb, cy);
  expect_close("add_relu", cy, y, 0);
  cpu->add_relu_backward(y, a, d);
  cuda->add_relu_backward(cy, ga, cd);
  expect_close("add_relu backward", cd, d, 0);
  cpu->accumulate(a, b);
  cuda->accumulate(ga, gb);
  expect_close("accumulate", gb, b, 0);
  Tensor mask, cmask;  // a ReLU output: zero where a <= 0
  cpu->relu_forward(a, mask);
  cuda->relu_forward(ga, cmask);
  cpu->accumulate_relu_backward(a, mask, b);
  cuda->accumulate_relu_backward(ga, cmask, gb);
  expect_close("accumulate_relu_backward", gb, b, 0);

  PoolGeometry p{4, 9, 9, 32, 3, 2, 1};
  Tensor x = random_tensor({4, 9, 9, 32}, gen), pdy = random_tensor({4, 5, 5, 32}, gen);
  Tensor ws, cws, py, cpy, pdx, cpdx;
  cpu->maxpool_forward(p, x, py, ws);
  cpu->maxpool_backward(p, pdy, ws, pdx);
  Tensor gx = up(x);
  cuda->maxpool_forward(p, gx, cpy, cws);
  cuda->maxpool_backward(p, up(pdy), cws, cpdx);
  expect_close("maxpool", cpy, py, 0);
  expect_close("maxpool backward", cpdx, pdx, 1e-6);

  Tensor avg, cavg, adx = Tensor::empty(x.shape()), cadx = cuda->allocate(x.shape());
  cpu->global_avgpool_forward(x, avg);
  cuda->global_avgpool_forward(gx, cavg);
  expect_close("global avgpool", cavg, avg, 1e-6);
  Tensor ady = random_tensor({4, 32}, gen);
  cpu->global_avgpool_backward(ady, adx);
  cuda->global_avgpool_backward(up(ady), cadx);
  expect_close("global avgpool backward", cadx, adx, 1e-6);

  Tensor lx = random_tensor({16, 2048}, gen), lw = random_tensor({10, 2048}, gen);
  Tensor lb = random_tensor({10}, gen), ldy = random_tensor({16, 10}, gen);
  Tensor ly, cly, ldx, cldx, ldw, cldw, ldb, cldb;
  cpu->linear_forward(lx, lw, lb, ly);
  cpu->linear_backward(lx, lw, ldy, ldx, ldw, ldb);
  Tensor glx = up(lx), glw = up(lw);
  cuda->linear_forward(glx, glw, up(lb), cly);
  cuda->linear_backward(glx, glw, up(ldy), cldx, cldw, cldb);
  expect_close("linear y", cly, ly, 1e-5);
  expect_close("linear dx", cldx, ldx, 1e-5);
  expect_close("linear dw", cldw, ldw, 1e-5);
  expect_close("linear db", cldb, ldb, 1e-5);
}

// The ops airbench-style networks add: GELU (oneDNN's erf against CUDA's erff: rounding only),
// the constant scale, a conv's channel bias, max pooling with kernel = stride, linear without
// bias.
TEST_F(CudaVsCpu, GeluScaleChannelBiasPoolLinearWithoutBias) {
  std::mt19937 gen(5);
  Tensor a = random_tensor({4, 15, 15, 64}, gen, -5.f, 5.f), b = random_tensor(a.shape(), gen);
  Tensor ga = up(a), gb = up(b);
  Tensor y, cy, d, cd;
  cpu->gelu_forward(a, y);
  cuda->gelu_forward(ga, cy);
  expect_close("gelu", cy, y, 1e-6);
  cpu->gelu_backward(a, b, d);
  cuda->gelu_backward(ga, gb, cd);
  expect_close("gelu backward", cd, d, 1e-6);
  cpu->scale(a, 1.f / 9.f, y);
  cuda->scale(ga, 1.f / 9.f, cy);
  expect_close("scale", cy, y, 0);

  Tensor bias = random_tensor({64}, gen);
  Tensor ya = copy_of(a), gya = up(a);
  cpu->channel_bias_forward(bias, ya);
  cuda->channel_bias_forward(up(bias), gya);
  expect_close("channel bias", gya, ya, 0);
  Tensor db, cdb;
  cpu->channel_bias_backward(b, db);
  cuda->channel_bias_backward(gb, cdb);
  expect_close("channel bias backward", cdb, db, 1e-5);

  for (const PoolGeometry& p :
       {PoolGeometry{4, 31, 31, 64, 2, 2, 0}, PoolGeometry{4, 3, 3, 256, 3, 3, 0}}) {
    Tensor x = random_tensor({p.n, p.h, p.w, p.c}, gen);
    Tensor pdy = random_tensor({p.n, p.out_h(), p.out_w(), p.c}, gen);
    Tensor ws, cws, py, cpy, pdx, cpdx;
    cpu->maxpool_forward(p, x, py, ws);
    cpu->maxpool_backward(p, pdy, ws, pdx);
    Tensor gx = up(x);
    cuda->maxpool_forward(p, gx, cpy, cws);
    cuda->maxpool_backward(p, up(pdy), cws, cpdx);
    expect_close("maxpool k=s", cpy, py, 0);
    expect_close("maxpool k=s backward", cpdx, pdx, 0);
  }
  // NaNs anywhere in a window win over every number (PyTorch's rule: the window's last NaN),
  // so none is pooled away: CUDA against the rule written out here, output and argmax (which
  // position takes the gradient).
  {
    const PoolGeometry p{4, 31, 31, 64, 2, 2, 0};
    Tensor x = random_tensor({p.n, p.h, p.w, p.c}, gen);
    for (int64_t i = 5; i < x.numel(); i += 37) x.data()[i] = std::nanf("");
    Tensor dy = Tensor::empty({p.n, p.out_h(), p.out_w(), p.c});
    std::fill_n(dy.data(), dy.numel(), 1.f);
    Tensor cy, cws, cdx;
    cuda->maxpool_forward(p, up(x), cy, cws);
    cuda->maxpool_backward(p, up(dy), cws, cdx);
    const Tensor y = down(cy), dx = down(cdx);
    int64_t nans = 0;
    for (int64_t b = 0; b < p.n; ++b)
      for (int64_t oy = 0; oy < p.out_h(); ++oy)
        for (int64_t ox = 0; ox < p.out_w(); ++ox)
          for (int64_t k = 0; k < p.c; ++k) {
            int64_t win = -1;  // input index of the winner
            for (int64_t ky = 0; ky < p.kernel; ++ky)
              for (int64_t kx = 0; kx < p.kernel; ++kx) {
                const int64_t i = ((b * p.h + oy * 2 + ky) * p.w + ox * 2 + kx) * p.c + k;
                if (win < 0 || x.data()[i] > x.data()[win] || std::isnan(x.data()[i])) win = i;
              }
            const int64_t o = ((b * p.out_h() + oy) * p.out_w() + ox) * p.c + k;
            const float want = x.data()[win], got = y.data()[o];
            nans += std::isnan(want);
            ASSERT_TRUE(std::isnan(want) ? std::isnan(got) : got == want) << "maxpool with NaNs";
            ASSERT_EQ(dx.data()[win], 1.f) << "the winner takes the gradient";
          }
    EXPECT_GT(nans, 0);
  }

  Tensor lx = random_tensor({16, 256}, gen), lw = random_tensor({10, 256}, gen), none;
  Tensor ly, cly;
  cpu->linear_forward(lx, lw, none, ly);
  cuda->linear_forward(up(lx), up(lw), none, cly);
  expect_close("linear without bias", cly, ly, 1e-5);
}

// The bias gradient of airbench94's whitening convolution: 24 channels summed over a whole
// batch of its 31x31 maps (984,064 rows; the reduction's 256 chunks each several thousand
// rows long), values of one sign so that nothing cancels. The CPU sums in double; the GPU
// sums chunks in f32 and adds them in double.
TEST_F(CudaVsCpu, ChannelBiasGradientOverAWholeBatch) {
  std::mt19937 gen(21);
  const Tensor dy = random_tensor({1024, 31, 31, 24}, gen, 0.f, 1.f);
  Tensor db, cdb;
  cpu->channel_bias_backward(dy, db);
  cuda->channel_bias_backward(up(dy), cdb);
  expect_close("channel bias backward", cdb, db, 1e-6);
}

// The option-A shortcut copies values, so the GPU must reproduce the CPU bit for bit, at both
// CIFAR-ResNet transitions (the CPU side then reads and writes blocked layouts) and on an odd map.
TEST_F(CudaVsCpu, SubsamplePadShortcut) {
  std::mt19937 gen(11);
  for (const SubsamplePadGeometry& g :
       {SubsamplePadGeometry{4, 32, 32, 16, 32, 2}, SubsamplePadGeometry{4, 16, 16, 32, 64, 2},
        SubsamplePadGeometry{3, 7, 9, 5, 12, 2}}) {
    SCOPED_TRACE(fmt::format("{}x{} {}->{}", g.h, g.w, g.c_in, g.c_out));
    Tensor x = random_tensor({g.n, g.h, g.w, g.c_in}, gen);
    Tensor dy = random_tensor({g.n, g.out_h(), g.out_w(), g.c_out}, gen);
    Tensor y, dx, cy, cdx;
    cpu->subsample_pad_forward(g, x, y);
    cpu->subsample_pad_backward(g, dy, dx);
    cuda->subsample_pad_forward(g, up(x), cy);
    cuda->subsample_pad_backward(g, up(dy), cdx);
    expect_close("subsample_pad y", cy, in_nhwc_order(y), 0);
    expect_close("subsample_pad dx", cdx, in_nhwc_order(dx), 0);
  }
}

TEST_F(CudaVsCpu, LossSgdNormsFill) {
  std::mt19937 gen(4);
  for (float smoothing : {0.f, 0.1f}) {
    Tensor logits = random_tensor({64, 1000}, gen, -4.f, 4.f);
    Tensor labels = Tensor::empty({64}, DType::i32);
    for (int i = 0; i < 64; ++i) labels.data<int32_t>()[i] = static_cast<int32_t>(gen() % 1000);
    labels.data<int32_t>()[0] = 0;
    Tensor d, cd;
    int64_t hits = -1, chits = -2;
    float loss = cpu->softmax_cross_entropy(logits, labels, smoothing, d, hits);
    float closs = cuda->softmax_cross_entropy(up(logits), up(labels), smoothing, cd, chits);
    EXPECT_NEAR(closs, loss, 1e-5 * std::abs(loss));
    EXPECT_EQ(chits, hits);
    expect_close("dlogits", cd, d, 1e-5);
  }
  Tensor bad_labels = Tensor::empty({2}, DType::i32);
  bad_labels.data<int32_t>()[0] = 1;
  bad_labels.data<int32_t>()[1] = 10;
  Tensor d;
  int64_t hits = 0;
  EXPECT_THROW(cuda->softmax_cross_entropy(up(random_tensor({2, 10}, gen)), up(bad_labels), 0.f,
                                           d, hits),
               DataError);

  const int64_t n = 100003;
  Tensor w = random_tensor({n}, gen), g = random_tensor({n}, gen), m = random_tensor({n}, gen);
  Tensor mask = random_tensor({n}, gen, 0.f, 1.f);
  for (int64_t i = 0; i < n; ++i) mask.data()[i] = mask.data()[i] > 0.5f ? 1.f : 0.f;
  Tensor gw = up(w), gg = up(g), gm = up(m), gmask = up(mask);
  SgdHyper h{0.05f, 0.9f, 0.f, 5e-4f, true};
  for (int step = 0; step < 3; ++step) {
    cpu->sgd_step(h, w, g, m, mask);
    cuda->sgd_step(h, gw, gg, gm, gmask);
  }
  expect_close("sgd weights", gw, w, 1e-6);
  expect_close("sgd momentum", gm, m, 1e-6);
  // Momentum 0: no buffer (torch keeps none), plain w - lr * (g + decay * w).
  const SgdHyper plain{0.05f, 0.f, 0.f, 5e-4f, false};
  Tensor no_buffer, no_device_buffer;
  cpu->sgd_step(plain, w, g, no_buffer, mask);
  cuda->sgd_step(plain, gw, gg, no_device_buffer, gmask);
  expect_close("sgd without momentum", gw, w, 1e-6);
  // The same values on both sides (the SGD results differ in the last bits by FMA contraction):
  // squares and sums in double leave only the summation order between them.
  const double gw_squares = cpu->sum_of_squares(down(gw));
  EXPECT_NEAR(cuda->sum_of_squares(gw), gw_squares, 1e-12 * gw_squares);
  cuda->fill(gw, 0.25f);
  cpu->fill(w, 0.25f);
  expect_close("fill", gw, w, 0);
}

// Backend::augment_batch (the augmentation of --augment-on device) against the host
// Augmenter, normalised with two different statistics (the second upload replaces the first)
// and without normalisation, and with reflect padding.
TEST_F(CudaVsCpu, AugmentBatchMatchesHostAugmenter) {
  const int64_t n = 6, h = 12, w = 10, c = 3;
  std::mt19937 gen(5);
  Tensor images = Tensor::empty({n, h, w, c}, DType::u8);
  for (int64_t i = 0; i < images.numel(); ++i) images.data<uint8_t>()[i] = gen() & 255;
  const Tensor gi = up(images);
  Tensor out;
  for (int variant = 0; variant < 4; ++variant) {  // 3: reflect padding (--translate)
    SCOPED_TRACE(variant);
    data::AugmentConfig config;
    config.random_crop = true;
    config.crop_padding = 4;
    config.reflect = variant == 3;
    config.horizontal_flip = true;
    config.normalize = variant < 2;
    if (variant == 0) {
      config.mean = {0.5, 0.4, 0.3};
      config.std = {0.2, 0.25, 0.3};
    } else {
      config.mean = {0.1, 0.2, 0.3};
      config.std = {0.3, 0.3, 0.2};
    }
    config.seed = 17 + variant;
    std::vector<data::SampleDraw> draws;
    for (int64_t b = 0; b < n; ++b) draws.push_back(data::draw_for_sample(config, 0, b));
    const data::testing::AugmentedOnHost host =
        data::testing::augment_on_host(config, images, draws);
    cuda->augment_batch(augment_spec_for(config), gi, up(host.crop_yx), up(host.flip), out);
    expect_close("augmented batch", out, host.expected, 1e-6);
  }
}

// One ResNet-50 training step, same initial weights and batch on both backends.
TEST_F(CudaVsCpu, ResNet50TrainingStep) {
  auto cpu_model = make_damped_resnet50(*cpu);
  auto cuda_model = make_damped_resnet50(*cuda);
  ASSERT_EQ(cpu_model->params().numel(), cuda_model->params().numel());
  expect_close("initial weights", cuda_model->params(), cpu_model->params(), 0);
  std::mt19937 gen(6);
  compare_training_step(*cpu_model, *cuda_model, random_tensor({8, 32, 32, 3}, gen, -2.f, 2.f),
                        cycled_labels(8, 1), 0.1f, SgdHyper{0.1f, 0.9f, 0.f, 5e-4f, false});
}

// airbench94's step (GELU, conv bias, max pools with kernel = stride, fixed BN scales, bias-free
// head, logits x 1/9) on both backends from the same weights, and airbench95's (the same at
// widths 128/384/384). The pools pick maxima, so a window whose top two values sit within
// float32 rounding could route one gradient element differently: the tolerances are the
// ResNet-50 step's.
TEST_F(CudaVsCpu, AirbenchTrainingSteps) {
  for (const char* arch : {"airbench94", "airbench95"}) {
    SCOPED_TRACE(arch);
    nn::ModelSpec spec;
    spec.arch = arch;
    spec.seed = 5;
    auto cpu_model = nn::make_model(spec, *cpu);
    auto cuda_model = nn::make_model(spec, *cuda);
    expect_close("initial weights", cuda_model->params(), cpu_model->params(), 0);
    std::mt19937 gen(7);
    compare_training_step(*cpu_model, *cuda_model, random_tensor({8, 32, 32, 3}, gen, -2.f, 2.f),
                          cycled_labels(8, 3), 0.2f, SgdHyper{0.1f, 0.9f, 0.f, 5e-4f, true});
  }
}

}  // namespace
}  // namespace dp::test
