// Pillow's resampling (libImaging/Resample.c: precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResampleHorizontal/Vertical_8bpc) with the bilinear filter, computing only the
// output rows and columns the centre crop keeps: each output pixel's weights depend on its
// own position only, so the kept pixels equal those of the full resize.
#include "data/image_resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace dp::data {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit images

double bilinear(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Python's int(round(x / 2.0)) for an integer x >= 0: half-way cases go to the even neighbour.
int64_t centre_offset(int64_t excess) {
  return static_cast<int64_t>(std::nearbyint(static_cast<double>(excess) / 2.0));
}

// The weights of output pixels [first, first + count) of a 1-D resize from in_size to
// out_size: for each, the first input pixel and fixed-point weights of `taps` input pixels.
struct Coefficients {
  int64_t taps = 0;
  std::vector<int64_t> start, used;  // per output pixel
  std::vector<int32_t> weights;      // per output pixel, `taps` of them (zero-padded)
};

Coefficients coefficients(int64_t in_size, int64_t out_size, int64_t first, int64_t count) {
  const double scale = double(in_size) / double(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the bilinear filter's support is 1
  Coefficients c;
  c.taps = int64_t(std::ceil(support)) * 2 + 1;
  c.start.resize(count);
  c.used.resize(count);
  c.weights.assign(size_t(count * c.taps), 0);
  std::vector<double> w(size_t(c.taps));
  for (int64_t i = 0; i < count; ++i) {
    const double center = (double(first + i) + 0.5) * scale;
    const double ss = 1.0 / filter_scale;
    // C's (int) truncation, as Pillow; the arguments are > -1 so truncation is what it is there.
    int64_t lo = int64_t(center - support + 0.5), hi = int64_t(center + support + 0.5);
    lo = std::max<int64_t>(lo, 0);
    hi = std::min(hi, in_size) - lo;
    double total = 0;
    for (int64_t x = 0; x < hi; ++x) total += w[x] = bilinear((double(x + lo) - center + 0.5) * ss);
    for (int64_t x = 0; x < hi; ++x) {
      const double k = total != 0.0 ? w[x] / total : w[x];
      c.weights[i * c.taps + x] =
          int32_t(k < 0 ? -0.5 + k * (1 << kPrecisionBits) : 0.5 + k * (1 << kPrecisionBits));
    }
    c.start[i] = lo;
    c.used[i] = hi;
  }
  return c;
}

// Pillow's accumulators are 32-bit ints: the bilinear weights are >= 0 and sum to about
// 2^22, so 255 * 2^22 + 2^21 < 2^31 cannot overflow.
uint8_t clip8(int32_t accumulated) {
  return uint8_t(std::clamp<int32_t>(accumulated >> kPrecisionBits, 0, 255));
}

// Horizontal pass of rows [row0, row1) into `temp` (`size` columns), C channels known at
// compile time so the channel loop unrolls.
template <int C>
void horizontal_pass(const DecodedImage& image, const Coefficients& ch, int64_t row0,
                     int64_t row1, int64_t size, uint8_t* temp) {
  for (int64_t y = row0; y < row1; ++y) {
    const uint8_t* in = image.pixels.data() + size_t(y * image.width * C);
    uint8_t* out = temp + size_t((y - row0) * size * C);
    for (int64_t x = 0; x < size; ++x) {
      const int32_t* k = ch.weights.data() + x * ch.taps;
      const uint8_t* p = in + ch.start[x] * C;
      int32_t ss[C];
      for (int b = 0; b < C; ++b) ss[b] = 1 << (kPrecisionBits - 1);
      for (int64_t t = 0; t < ch.used[x]; ++t)
        for (int b = 0; b < C; ++b) ss[b] += int32_t(p[t * C + b]) * k[t];
      for (int b = 0; b < C; ++b) out[x * C + b] = clip8(ss[b]);
    }
  }
}

// Vertical pass: output row y sums `used` input rows of `temp`; taps outer and bytes inner,
// so the inner loop runs over contiguous memory (the compiler vectorises it).
void vertical_pass(const uint8_t* temp, int64_t row0, const Coefficients& cv, int64_t size,
                   int64_t row_bytes, uint8_t* out) {
  std::vector<int32_t> acc(static_cast<size_t>(row_bytes));
  for (int64_t y = 0; y < size; ++y) {
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    const int32_t* k = cv.weights.data() + y * cv.taps;
    for (int64_t t = 0; t < cv.used[y]; ++t) {
      const uint8_t* in = temp + size_t((cv.start[y] - row0 + t) * row_bytes);
      const int32_t w = k[t];
      for (int64_t i = 0; i < row_bytes; ++i) acc[i] += int32_t(in[i]) * w;
    }
    uint8_t* o = out + size_t(y * row_bytes);
    for (int64_t i = 0; i < row_bytes; ++i) o[i] = clip8(acc[i]);
  }
}

}  // namespace

void resized_shape(int64_t height, int64_t width, int64_t size, int64_t& out_height,
                   int64_t& out_width) {
  // torchvision: short, long = (w, h) if w <= h else (h, w); long' = int(size * long / short).
  if (width <= height) {
    out_width = size;
    out_height = size * height / width;
  } else {
    out_height = size;
    out_width = size * width / height;
  }
}

DecodedImage resize_shorter_side_center_crop(const DecodedImage& image, int64_t size) {
  DP_CHECK(size > 0 && image.height > 0 && image.width > 0, "resize to {}", size);
  int64_t rh = 0, rw = 0;
  resized_shape(image.height, image.width, size, rh, rw);
  const int64_t c = image.channels, top = centre_offset(rh - size),
                left = centre_offset(rw - size);
  // Pillow skips a pass whose size does not change (the pass would be the identity anyway).
  const bool horizontal = rw != image.width, vertical = rh != image.height;
  const Coefficients cv = coefficients(image.height, rh, top, size);
  // The input rows the vertical pass reads (all of the crop's rows when it does not run).
  const int64_t row0 = vertical ? cv.start.front() : top;
  const int64_t row1 = vertical ? cv.start.back() + cv.used.back() : top + size;
  // Horizontal pass: rows [row0, row1) to `size` columns (8-bit, as Pillow's temporary image).
  std::vector<uint8_t> temp(size_t((row1 - row0) * size * c));
  if (horizontal) {
    const Coefficients ch = coefficients(image.width, rw, left, size);
    if (c == 3)
      horizontal_pass<3>(image, ch, row0, row1, size, temp.data());
    else if (c == 1)
      horizontal_pass<1>(image, ch, row0, row1, size, temp.data());
    else
      DP_CHECK(false, "resize of {} channels", c);
  } else {
    for (int64_t y = row0; y < row1; ++y)
      std::memcpy(temp.data() + size_t((y - row0) * size * c),
                  image.pixels.data() + size_t((y * image.width + left) * c), size_t(size * c));
  }
  DecodedImage out;
  out.height = out.width = size;
  out.channels = c;
  if (!vertical) {
    out.pixels = std::move(temp);
    return out;
  }
  out.pixels.resize(size_t(size * size * c));
  vertical_pass(temp.data(), row0, cv, size, size * c, out.pixels.data());
  return out;
}

}  // namespace dp::data
