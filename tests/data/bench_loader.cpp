// Benchmark (not a test): images/s through ShardedLoader (hyperslab read + random crop +
// flip + normalise) on one rank.
//   bench_loader FILE.h5 [batch=128] [epochs=2] [depth=4]
//   bench_loader --synthetic N [batch] [epochs] [depth] [checksums|none]
//     (packs N random 32x32x3 images first; `none` packs them without checksums, as files
//     packed before checksums existed, for the with/without comparison)
#include <time.h>

#include <cstdio>
#include <string>

#include "core/error.h"
#include "core/timer.h"
#include "data/distributed_sampler.h"
#include "data/sharded_loader.h"
#include "data_fixtures.h"

using namespace dp;
using namespace dp::data;

// CPU time of the calling thread: on a shared machine wall time mostly measures the neighbours.
static double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Reading alone and augmentation alone, one epoch's worth of batches each, in this thread.
static void bench_phases(const HDF5Dataset& dataset, const DistributedSampler& sampler,
                         const LoaderOptions& options) {
  auto indices = sampler.indices_for_epoch(0);
  const int64_t batch = options.batch_size, sample = dataset.sample_bytes();
  std::vector<uint8_t> raw(batch * sample);
  std::vector<float> out(batch * sample);
  Augmenter augmenter(options.augment, dataset.height(), dataset.width(), dataset.channels());
  double read_cpu = 0, read_wall = 0, augment_cpu = 0;
  int64_t images = 0;
  for (size_t first = 0; first + batch <= indices.size(); first += batch) {
    std::vector<int64_t> ids(indices.begin() + first, indices.begin() + first + batch);
    double c0 = thread_cpu_seconds(), w0 = now_seconds();
    dataset.read_images(ids, raw.data());
    double c1 = thread_cpu_seconds();
    read_wall += now_seconds() - w0;
    augmenter.apply_batch(raw.data(), ids, 0, out.data());
    augment_cpu += thread_cpu_seconds() - c1;
    read_cpu += c1 - c0;
    images += batch;
  }
  std::printf("phases (thread CPU time): read %.0f images/s (wall %.0f), augment %.0f images/s\n",
              images / read_cpu, images / read_wall, images / augment_cpu);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.h5|--synthetic N [batch] [epochs] [depth] [checksums|none]\n",
                 argv[0]);
    return 2;
  }
  int arg = 1;
  std::string file = argv[arg++];
  std::unique_ptr<testing::TempDir> tmp;
  int64_t synthetic_count = 0;
  if (file == "--synthetic") {
    synthetic_count = argc > arg ? std::stoll(argv[arg++]) : 50000;
    tmp = std::make_unique<testing::TempDir>("dp_bench");
    file = *tmp / "synthetic32.h5";
  }
  const int64_t batch = argc > arg ? std::stoll(argv[arg++]) : 128;
  const int epochs = argc > arg ? std::stoi(argv[arg++]) : 2;
  const int depth = argc > arg ? std::stoi(argv[arg++]) : 4;
  const bool checksums = argc > arg ? std::string(argv[arg++]) != "none" : true;
  if (tmp) {
    const double t0 = now_seconds();
    testing::write_synthetic_packed(file, synthetic_count, 16, 32, 32, 3, 5,
                                    checksums ? h5::Checksum::fletcher32 : h5::Checksum::none);
    std::printf("packed %lld synthetic 32x32x3 images (%s) in %.2f s\n",
                (long long)synthetic_count, checksums ? "checksummed" : "no checksums",
                now_seconds() - t0);
  }
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
    bench_phases(dataset, sampler, options);
    ShardedLoader loader(
        dataset, [&](int64_t e) { return sampler.indices_for_epoch(e); }, options);
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
      const double consumer_wait = loader.epoch_wait_seconds();
      std::printf(
          "%s %s epoch %d: %lld images (%lldx%lldx%lld) batch %lld depth %d: %.2f s, "
          "%.0f images/s, consumer waited %.2f s (checksum %.3f)\n",
          dataset.name().c_str(), file.c_str(), epoch, (long long)images,
          (long long)dataset.height(), (long long)dataset.width(), (long long)dataset.channels(),
          (long long)batch, depth, seconds, images / seconds, consumer_wait, checksum);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return static_cast<int>(e.code());
  }
  return 0;
}
