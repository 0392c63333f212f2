// CudaBackend's input augmentation: crop, flip and normalise a batch of u8 images on the
// device (augment_kernels.cu, the arithmetic of data::Augmenter), the normalisation statistics
// uploaded only when they change.
#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"

namespace dp::cuda {

void CudaBackend::augment_batch(const AugmentSpec& spec, const Tensor& images,
                                const Tensor& crop_yx, const Tensor& flip, Tensor& out) {
  check_augment_operands(spec, images, crop_yx, flip);
  check_device(images, "augment_batch", "images");
  check_device(crop_yx, "augment_batch", "crop offsets");
  check_device(flip, "augment_batch", "flips");
  const int64_t n = images.dim(0), h = images.dim(1), w = images.dim(2), c = images.dim(3);
  output(out, images.shape());
  const float* mean = nullptr;
  const float* std = nullptr;
  if (!spec.mean.empty()) {
    if (spec.mean != augment_mean_ || spec.std != augment_std_ || !augment_stats_.defined()) {
      augment_mean_ = spec.mean;
      augment_std_ = spec.std;
      std::vector<float> stats(augment_mean_);
      stats.insert(stats.end(), augment_std_.begin(), augment_std_.end());
      output(augment_stats_, {2, c});
      copy_from_host(stats.data(), augment_stats_);  // staged before it returns
    }
    mean = augment_stats_.data<float>();
    std = mean + c;
  }
  checked_launch([&] {
    kernels::augment_batch({n, h, w, c, spec.pad, spec.reflect}, images.data<uint8_t>(),
                           crop_yx.data<int32_t>(), flip.data<uint8_t>(), mean, std,
                           out.data<float>(), ctx_.s());
  });
}

}  // namespace dp::cuda
