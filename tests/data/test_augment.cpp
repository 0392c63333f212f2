// Augmentation: torchvision semantics (RandomCrop with zero padding in uint8 space, then
// horizontal flip, then ToTensor + Normalize) and determinism per (seed, epoch, sample).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "data/augment.h"
#include "data_fixtures.h"
#include "support/max_difference.h"

namespace dp::data {
namespace {

constexpr int64_t H = 6, W = 5, C = 3;

AugmentConfig full_config() {
  AugmentConfig c;
  c.random_crop = true;
  c.crop_padding = 2;
  c.horizontal_flip = true;
  c.normalize = true;
  c.mean = {0.49, 0.48, 0.45};
  c.std = {0.25, 0.24, 0.26};
  c.seed = 1234;
  return c;
}

// Independent reference: materialise the zero-padded uint8 image, crop it at (dy, dx),
// mirror it, then ToTensor + Normalize in double precision.
std::vector<double> reference(const std::vector<uint8_t>& img, const AugmentConfig& cfg,
                              const SampleDraw& d) {
  const int64_t p = cfg.crop_padding, PH = H + 2 * p, PW = W + 2 * p;
  std::vector<uint8_t> padded(PH * PW * C, 0);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c)
        padded[((y + p) * PW + x + p) * C + c] = img[(y * W + x) * C + c];
  std::vector<uint8_t> cropped(H * W * C);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c)
        cropped[(y * W + x) * C + c] = padded[((y + d.crop_y) * PW + x + d.crop_x) * C + c];
  std::vector<double> out(H * W * C);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c) {
        int64_t sx = d.flip ? W - 1 - x : x;
        double v = cropped[(y * W + sx) * C + c] / 255.0;
        out[(y * W + x) * C + c] = cfg.normalize ? (v - cfg.mean[c]) / cfg.std[c] : v;
      }
  return out;
}

TEST(Augment, DrawsAreDeterministicPerSeedEpochAndSample) {
  auto cfg = full_config();
  std::set<int> ys, xs;
  int flips = 0, changed_with_epoch = 0;
  for (int64_t i = 0; i < 500; ++i) {
    SampleDraw a = draw_for_sample(cfg, 3, i), b = draw_for_sample(cfg, 3, i);
    EXPECT_EQ(a.crop_y, b.crop_y);
    EXPECT_EQ(a.crop_x, b.crop_x);
    EXPECT_EQ(a.flip, b.flip);
    ASSERT_GE(a.crop_y, 0);
    ASSERT_LE(a.crop_y, 2 * cfg.crop_padding);
    ASSERT_GE(a.crop_x, 0);
    ASSERT_LE(a.crop_x, 2 * cfg.crop_padding);
    ys.insert(a.crop_y);
    xs.insert(a.crop_x);
    flips += a.flip;
    SampleDraw e = draw_for_sample(cfg, 4, i);
    changed_with_epoch += (e.crop_y != a.crop_y || e.crop_x != a.crop_x || e.flip != a.flip);
  }
  EXPECT_EQ(ys.size(), 5u);  // every offset in [0, 2p] occurs
  EXPECT_EQ(xs.size(), 5u);
  EXPECT_GT(flips, 200);  // p = 0.5 over 500 samples
  EXPECT_LT(flips, 300);
  EXPECT_GT(changed_with_epoch, 400);
}

TEST(Augment, DisabledAugmentationsAreIdentityButKeepTheOtherDraws) {
  auto cfg = full_config();
  auto no_crop = cfg;
  no_crop.random_crop = false;
  auto no_flip = cfg;
  no_flip.horizontal_flip = false;
  for (int64_t i = 0; i < 50; ++i) {
    SampleDraw full = draw_for_sample(cfg, 0, i);
    SampleDraw a = draw_for_sample(no_crop, 0, i), b = draw_for_sample(no_flip, 0, i);
    EXPECT_EQ(a.crop_y, cfg.crop_padding);
    EXPECT_EQ(a.crop_x, cfg.crop_padding);
    EXPECT_EQ(a.flip, full.flip);
    EXPECT_FALSE(b.flip);
    EXPECT_EQ(b.crop_y, full.crop_y);
  }
}

TEST(Augment, MatchesReferenceForEveryOffsetAndFlip) {
  auto cfg = full_config();
  Augmenter aug(cfg, H, W, C);
  auto img = testing::random_bytes(H * W * C, 77);
  std::vector<float> out(H * W * C);
  for (int dy = 0; dy <= 4; ++dy)
    for (int dx = 0; dx <= 4; ++dx)
      for (bool flip : {false, true}) {
        SampleDraw d{dy, dx, flip};
        aug.apply(img.data(), d, out.data());
        auto ref = reference(img, cfg, d);
        for (size_t k = 0; k < out.size(); ++k)
          ASSERT_NEAR(out[k], ref[k], 1e-5) << dy << "," << dx << "," << flip << " at " << k;
      }
}

TEST(Augment, PaddingIsZeroBeforeNormalisation) {
  auto cfg = full_config();
  Augmenter aug(cfg, H, W, C);
  std::vector<uint8_t> img(H * W * C, 200);
  std::vector<float> out(H * W * C);
  aug.apply(img.data(), SampleDraw{0, 0, false}, out.data());  // shifted down-right by 2
  for (int64_t c = 0; c < C; ++c) {
    const float pad = static_cast<float>((0.0 - cfg.mean[c]) / cfg.std[c]);
    EXPECT_NEAR(out[(0 * W + 0) * C + c], pad, 1e-6);  // top-left corner comes from padding
    EXPECT_NEAR(out[(1 * W + 4) * C + c], pad, 1e-6);  // rows 0-1 are padding
    EXPECT_NEAR(out[(3 * W + 1) * C + c], pad, 1e-6);  // columns 0-1 are padding
    EXPECT_NEAR(out[(3 * W + 2) * C + c], (200 / 255.0 - cfg.mean[c]) / cfg.std[c], 1e-6);
  }
}

TEST(Augment, FlipReallyMirrors) {
  AugmentConfig cfg;
  cfg.horizontal_flip = true;
  cfg.normalize = false;
  Augmenter aug(cfg, H, W, C);
  auto img = testing::random_bytes(H * W * C, 5);
  std::vector<float> plain(H * W * C), flipped(H * W * C);
  aug.apply(img.data(), SampleDraw{cfg.crop_padding, cfg.crop_padding, false}, plain.data());
  aug.apply(img.data(), SampleDraw{cfg.crop_padding, cfg.crop_padding, true}, flipped.data());
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c) {
        EXPECT_EQ(plain[(y * W + x) * C + c], img[(y * W + x) * C + c] / 255.0f);
        EXPECT_EQ(flipped[(y * W + x) * C + c], plain[(y * W + (W - 1 - x)) * C + c]);
      }
}

TEST(Augment, NormalisationIsExact) {
  AugmentConfig cfg;
  cfg.mean = {0.1, 0.5, 0.9};
  cfg.std = {0.2, 0.3, 0.4};
  Augmenter aug(cfg, 1, 256, C);
  std::vector<uint8_t> img(256 * C);
  for (int v = 0; v < 256; ++v)
    for (int c = 0; c < C; ++c) img[v * C + c] = v;
  std::vector<float> out(img.size());
  aug.apply_batch(img.data(), {0}, 0, out.data());
  for (int v = 0; v < 256; ++v)
    for (int c = 0; c < C; ++c) {
      float expected = (v / 255.0f - float(cfg.mean[c])) / float(cfg.std[c]);
      EXPECT_EQ(out[v * C + c], expected) << v;
      EXPECT_NEAR(out[v * C + c], (v / 255.0 - cfg.mean[c]) / cfg.std[c], 1e-6);
    }
}

TEST(Augment, BatchResultDoesNotDependOnBatching) {
  auto cfg = full_config();
  Augmenter aug(cfg, H, W, C);
  const int64_t n = 12, s = H * W * C;
  auto imgs = testing::random_bytes(n * s, 9);
  std::vector<int64_t> ids = {40, 3, 17, 3, 99, 0, 5, 6, 7, 8, 1000, 2};
  std::vector<float> whole(n * s), pieces(n * s);
  aug.apply_batch(imgs.data(), ids, 7, whole.data());
  for (int64_t b = 0; b < n; b += 5) {
    std::vector<int64_t> part(ids.begin() + b, ids.begin() + std::min<int64_t>(n, b + 5));
    aug.apply_batch(imgs.data() + b * s, part, 7, pieces.data() + b * s);
  }
  EXPECT_EQ(whole, pieces);
  // The same sample index gets the same draw wherever it sits (positions 1 and 3 hold
  // sample 3 with different pixels, so compare draws instead).
  auto d1 = draw_for_sample(cfg, 7, ids[1]), d3 = draw_for_sample(cfg, 7, ids[3]);
  EXPECT_EQ(d1.crop_x, d3.crop_x);
}

TEST(Augment, RejectsMissingStatistics) {
  AugmentConfig cfg;
  cfg.mean = {0.5};
  cfg.std = {0.5};
  EXPECT_THROW(Augmenter(cfg, H, W, C), UsageError);
  cfg.normalize = false;
  EXPECT_NO_THROW(Augmenter(cfg, H, W, C));
}

}  // namespace
}  // namespace dp::data

namespace dp::data {
namespace {

// Independent reference of --translate: the reflect-padded image built as torch's
// F.pad(mode='reflect') defines it (padded column j < p shows column p - j; past the right edge
// column W - 2 - (j - p - W)), cropped at (dy, dx), mirrored, normalised in double.
std::vector<double> reflect_reference(const std::vector<uint8_t>& img, const AugmentConfig& cfg,
                                      const SampleDraw& d) {
  const int64_t p = cfg.crop_padding, PH = H + 2 * p, PW = W + 2 * p;
  auto source = [p](int64_t j, int64_t n) {
    if (j < p) return p - j;
    if (j >= p + n) return n - 2 - (j - p - n);
    return j - p;
  };
  std::vector<uint8_t> padded(PH * PW * C);
  for (int64_t y = 0; y < PH; ++y)
    for (int64_t x = 0; x < PW; ++x)
      for (int64_t c = 0; c < C; ++c)
        padded[(y * PW + x) * C + c] = img[(source(y, H) * W + source(x, W)) * C + c];
  std::vector<double> out(H * W * C);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t sx = d.flip ? W - 1 - x : x;
        const double v = padded[((y + d.crop_y) * PW + sx + d.crop_x) * C + c] / 255.0;
        out[(y * W + x) * C + c] = (v - cfg.mean[c]) / cfg.std[c];
      }
  return out;
}

TEST(Augment, ReflectPaddingMatchesReferenceForEveryOffsetAndFlip) {
  auto cfg = full_config();
  cfg.reflect = true;
  for (int pad : {1, 2, 4}) {
    cfg.crop_padding = pad;
    Augmenter aug(cfg, H, W, C);
    auto img = testing::random_bytes(H * W * C, 78);
    std::vector<float> out(H * W * C);
    double worst = 0;
    for (int dy = 0; dy <= 2 * pad; ++dy)
      for (int dx = 0; dx <= 2 * pad; ++dx)
        for (bool flip : {false, true}) {
          SampleDraw d{dy, dx, flip};
          aug.apply(img.data(), d, out.data());
          auto ref = reflect_reference(img, cfg, d);
          worst = std::max(worst, test::max_abs_difference(out, ref));
        }
    EXPECT_LT(worst, 1e-5) << "pad " << pad;
  }
  cfg.crop_padding = W;  // reflection needs a padding below the image size
  EXPECT_THROW(Augmenter(cfg, H, W, C), UsageError);
}

// Alternating flip: one draw per sample for the whole run, inverted in every even epoch; the
// crop draws are the ordinary per-epoch ones.
TEST(Augment, AlternatingFlipInvertsEachSamplesFirstDrawEveryOtherEpoch) {
  auto cfg = full_config();
  cfg.alternating_flip = true;
  auto plain = full_config();
  int flipped_in_epoch1 = 0;
  for (int64_t s = 0; s < 200; ++s) {
    const bool first = draw_for_sample(cfg, 1, s).flip;
    flipped_in_epoch1 += first;
    for (int64_t epoch = 1; epoch <= 6; ++epoch) {
      const SampleDraw d = draw_for_sample(cfg, epoch, s);
      EXPECT_EQ(d.flip, epoch % 2 == 1 ? first : !first) << s << " " << epoch;
      EXPECT_EQ(d.crop_y, draw_for_sample(plain, epoch, s).crop_y);
      EXPECT_EQ(d.crop_x, draw_for_sample(plain, epoch, s).crop_x);
    }
  }
  EXPECT_GT(flipped_in_epoch1, 70);  // about half of 200
  EXPECT_LT(flipped_in_epoch1, 130);
  cfg.horizontal_flip = false;
  EXPECT_FALSE(draw_for_sample(cfg, 2, 0).flip || draw_for_sample(cfg, 1, 0).flip);
}

}  // namespace
}  // namespace dp::data
