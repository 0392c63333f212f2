// Benchmark (not a test): images/s through ShardedLoader (hyperslab read + random crop +
// flip + normalise) on one rank.
//   bench_loader FILE.h5 [batch=128] [epochs=2] [depth=4]
//   bench_loader --synthetic N [batch] [epochs] [depth]   (packs N random 32x32x3 images first)
#include <cstdio>
#include <string>

#include "core/error.h"
#include "core/timer.h"
#include "data/distributed_sampler.h"
#include "data/sharded_loader.h"
#include "data_fixtures.h"

using namespace dp;
using namespace dp::data;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.h5|--synthetic N [batch] [epochs] [depth]\n", argv[0]);
    return 2;
  }
  int arg = 1;
  std::string file = argv[arg++];
  std::unique_ptr<testing::TempDir> tmp;
  if (file == "--synthetic") {
    const int64_t n = argc > arg ? std::stoll(argv[arg++]) : 50000;
    tmp = std::make_unique<testing::TempDir>("dp_bench");
    file = *tmp / "synthetic32.h5";
    const double t0 = now_seconds();
    testing::write_synthetic_packed(file, n, 16, 32, 32, 3);
    std::printf("packed %lld synthetic 32x32x3 images in %.2f s\n", (long long)n, now_seconds() - t0);
  }
  const int64_t batch = argc > arg ? std::stoll(argv[arg++]) : 128;
  const int epochs = argc > arg ? std::stoi(argv[arg++]) : 2;
  const int depth = argc > arg ? std::stoi(argv[arg++]) : 4;
  try {
    HDF5Dataset dataset(file, "train");
    DistributedSampler sampler(dataset.size(), 1, 0, 17);
    LoaderOptions options;
    options.batch_size = batch;
    options.prefetch_depth = depth;
    options.augment.random_crop = true;
    options.augment.crop_padding = 4;
    options.augment.horizontal_flip = true;
    options.augment.mean = dataset.mean();
    options.augment.std = dataset.std();
    ShardedLoader loader(dataset, [&](int64_t e) { return sampler.indices_for_epoch(e); }, options);
    for (int epoch = 0; epoch < epochs; ++epoch) {
      const double start = now_seconds();
      loader.start_epoch(epoch);
      int64_t images = 0;
      double checksum = 0;
      while (const HostBatch* b = loader.next()) {
        images += b->size();
        checksum += b->images.data<float>()[0];  // touch the batch like a consumer would
      }
      const double seconds = now_seconds() - start;
      std::printf("%s %s epoch %d: %lld images (%lldx%lldx%lld) batch %lld depth %d: %.2f s, "
                  "%.0f images/s (checksum %.3f)\n",
                  dataset.name().c_str(), file.c_str(), epoch, (long long)images,
                  (long long)dataset.height(), (long long)dataset.width(),
                  (long long)dataset.channels(), (long long)batch, depth, seconds,
                  images / seconds, checksum);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return static_cast<int>(e.code());
  }
  return 0;
}
