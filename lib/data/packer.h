// `dptrain pack`: converts an original dataset distribution (CIFAR-10 binary version, MNIST or
// Fashion-MNIST IDX files) into one HDF5 file in the layout of data/packed_format.h.
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/option_enum.h"
#include "data/raw_dataset.h"
#include "io/hdf5.h"

namespace dp::data {

// --format. automatic picks cifar10 when the directory holds data_batch_1.bin, cifar100 for
// train.bin with fine_label_names.txt; for IDX files it needs "fashion" or "mnist" in the
// directory's path, since the two datasets' files are otherwise indistinguishable. A folder of
// images is never guessed: it needs folder.
enum class PackFormat { automatic, cifar10, cifar100, mnist, fashion_mnist, folder };
constexpr std::array<NamedValue<PackFormat>, 6> enum_names(PackFormat) {
  using F = PackFormat;
  return {{{F::automatic, "auto"},
           {F::cifar10, "cifar10"},
           {F::cifar100, "cifar100"},
           {F::mnist, "mnist"},
           {F::fashion_mnist, "fashion-mnist"},
           {F::folder, "folder"}}};
}

// --labels, CIFAR-100's: fine (100 classes) or coarse (20 superclasses).
enum class Cifar100Labels { fine, coarse };
constexpr std::array<NamedValue<Cifar100Labels>, 2> enum_names(Cifar100Labels) {
  return {{{Cifar100Labels::fine, "fine"}, {Cifar100Labels::coarse, "coarse"}}};
}

struct PackOptions {
  PackFormat format = PackFormat::automatic;
  std::string source_dir;
  std::string output_file;
  Cifar100Labels labels = Cifar100Labels::fine;
  // folder only:
  int64_t image_size = 0;      // > 0: shorter side to this, then the centre square
  bool jpeg_draft = false;     // JPEGs decoded at 1/2..1/8 scale first, as Pillow's draft()
  double test_fraction = 0;    // DIR/<class>/* layout: this share of each class to test
  uint64_t seed = 0;           // of the test_fraction split
  int channels = 3;            // 3 (RGB, as ImageFolder's loader) or 1 (greyscale)
  int threads = 0;             // decoding threads; 0 = every core
  bool skip_bad = false;       // pack the rest past bad images, listing them
  double progress_seconds = 10;  // interval of the plain progress lines (not on a terminal)
  // The options the user set (names without "--"): one the resolved format does not read is
  // refused rather than left unused.
  std::set<std::string> given = {};
};

struct PackSummary {
  PackFormat format = PackFormat::automatic;  // the resolved format (never automatic)
  std::string output_file;
  int64_t train_count = 0, test_count = 0;
  int64_t height = 0, width = 0, channels = 0;
  std::vector<std::string> class_names;
  std::vector<double> mean, std;                             // per channel, train images in [0, 1]
  std::vector<std::pair<std::string, std::string>> sources;  // (file name, sha256 hex)
  std::vector<std::string> skipped;  // --skip-bad: "<file>: <problem>" per file left out
  double seconds = 0;
};

// Throws UsageError for a format auto cannot detect or an option the format does not read,
// DataError for bad input (naming the file),
// IoError when the output cannot be written. Writes "<output>.tmp" and renames it into
// place, so a failure never leaves a half-written output file.
PackSummary pack_dataset(const PackOptions& options);

// Per-channel mean and population standard deviation of uint8 (N, H, W, C) images scaled to
// [0, 1]; exact integer sums, so the result does not depend on summation order.
void channel_mean_std(const RawSplit& split, int64_t channels, std::vector<double>& mean,
                      std::vector<double>& std);

// Writes `raw` in the packed layout to `path` directly (pack_dataset adds the tmp+rename);
// `mean`/`std` are channel_mean_std of the train split. Every dataset is checksummed unless
// `checksum` is none (the layout of files packed before checksums, for benchmarks and tests).
void write_packed(const RawDataset& raw, const std::string& path, const std::vector<double>& mean,
                  const std::vector<double>& std, h5::Checksum checksum = h5::Checksum::fletcher32);

}  // namespace dp::data
