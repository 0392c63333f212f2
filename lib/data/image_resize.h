// Bringing images of any size to one S x S shape, as torchvision's Resize(S) + CenterCrop(S)
// do on PIL images: the shorter side scaled to S (the longer one to floor(S * long / short)),
// then the centre S x S cut out (offsets rounded half to even, as Python's round()).
//
// The filter is Pillow's BILINEAR (torchvision's default for PIL images): a tent filter
// widened by the scale factor when shrinking (so it averages, antialiased), applied
// horizontally then vertically in Pillow's 22-bit fixed point with an 8-bit intermediate,
// giving Pillow's bytes exactly. Written here, not taken from a library, because Debian's
// libstb (stb_image_resize 0.97) aborts on an assertion for some scale ratios (27x21 to 20x16
// with its triangle filter, checked on Debian 12; nothings/stb issue 1449, open) and the other
// Debian resizers (libswscale, libvips, ImageMagick) are whole media stacks;
// tests/data/test_pack_folder.py compares it with Pillow byte for byte.
#pragma once

#include <cstdint>

#include "data/image_decode.h"

namespace dp::data {

DecodedImage resize_shorter_side_center_crop(const DecodedImage& image, int64_t size);

// The intermediate size before the crop: (height, width) with the shorter side equal to `size`.
void resized_shape(int64_t height, int64_t width, int64_t size, int64_t& out_height,
                   int64_t& out_width);

}  // namespace dp::data
