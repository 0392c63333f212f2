#include "data/packer.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/timer.h"
#include "data/image_folder_packer.h"
#include "data/packed_format.h"
#include "data/streaming_pack_writer.h"
#include "io/hdf5.h"
#include "io/replace_file.h"

namespace dp::data {
namespace {

const std::vector<std::string> kMnistClasses = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
const std::vector<std::string> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

PackFormat resolve_format(const PackOptions& options) {
  if (options.format != PackFormat::automatic) return options.format;
  namespace fs = std::filesystem;
  fs::path dir(options.source_dir);
  std::error_code ec;
  // As every explicit format reports it: a missing source is the input's fault (exit 3).
  if (!fs::is_directory(dir, ec))
    throw DataError(fmt::format("{}: not a directory", options.source_dir));
  if (fs::exists(dir / "data_batch_1.bin", ec)) return PackFormat::cifar10;
  if (fs::exists(dir / "train.bin", ec) && fs::exists(dir / "fine_label_names.txt", ec))
    return PackFormat::cifar100;
  bool has_idx = fs::exists(dir / "train-images-idx3-ubyte", ec) ||
                 fs::exists(dir / "train-images-idx3-ubyte.gz", ec);
  if (has_idx) {
    // The nearest folder, from the source up, whose name says "mnist" (torchvision keeps the
    // files in FashionMNIST/raw/): Fashion-MNIST where that name also says "fashion".
    const fs::path where = fs::absolute(dir, ec).lexically_normal();
    for (auto it = where.end(); it != where.begin();) {
      const std::string name = lowercase((--it)->string());
      if (name.find("mnist") != std::string::npos)
        return name.find("fashion") != std::string::npos ? PackFormat::fashion_mnist
                                                         : PackFormat::mnist;
    }
    throw UsageError(
        fmt::format("{}: holds IDX files but MNIST and Fashion-MNIST cannot be told "
                    "apart; pass the format (mnist or fashion-mnist)",
                    options.source_dir));
  }
  throw UsageError(
      fmt::format("{}: cannot detect the dataset format (no data_batch_1.bin, no "
                  "train-images-idx3-ubyte[.gz]); pass it: --format folder for folders of "
                  "images (DIR/<class>/* or DIR/train/<class>/*), or cifar10, cifar100, mnist, "
                  "fashion-mnist",
                  options.source_dir));
}

// Training normalises by the std: a channel with one value in every training pixel (std 0)
// cannot be normalised, and is refused here rather than when the file is first read.
void require_spread(const PackSummary& summary, const std::string& source) {
  for (size_t c = 0; c < summary.std.size(); ++c)
    if (!(summary.std[c] > 0))
      throw DataError(fmt::format(
          "{}: channel {} has the same value ({:.0f} of 255) in every training pixel: its std "
          "is 0, so training cannot normalise it",
          source, c, summary.mean[c] * 255));
}

}  // namespace

void channel_mean_std(const RawSplit& split, int64_t channels, std::vector<double>& mean,
                      std::vector<double>& std) {
  std::vector<uint64_t> sum(channels, 0), sum_sq(channels, 0);
  const size_t pixels = split.images.size() / channels;
  accumulate_channel_sums(split.images.data(), pixels, channels, sum, sum_sq);
  mean_std_from_sums(sum, sum_sq, pixels, mean, std);
}

void write_packed(const RawDataset& raw, const std::string& path, const std::vector<double>& mean,
                  const std::vector<double>& std, h5::Checksum checksum) {
  h5::File file(path, h5::File::Mode::create_truncate);
  write_packed_header(file, {raw.name, raw.class_names, raw.height, raw.width, raw.channels},
                      checksum);
  std::vector<std::string> sources;
  for (const auto& [name, digest] : raw.sources) sources.push_back(name + " " + digest);
  // HDF5 rejects a zero-length attribute buffer; a file built without source files (tests,
  // benchmarks) simply has no "sources" attribute.
  if (!sources.empty()) file.set_attribute("sources", sources);
  const bool checked = checksum == h5::Checksum::fletcher32;
  const hsize_t image_chunk_rows = checked ? packed::kChunkRows : packed::kUncheckedChunkRows;
  const hsize_t label_chunk_rows = checked ? packed::kLabelChunkRows : packed::kUncheckedChunkRows;
  const std::pair<const char*, const RawSplit*> splits[] = {{"train", &raw.train},
                                                            {"test", &raw.test}};
  for (const auto& [split_name, split] : splits) {
    h5::Group group = file.create_group(split_name);
    group.write(
        "images",
        {hsize_t(split->count), hsize_t(raw.height), hsize_t(raw.width), hsize_t(raw.channels)},
        split->images.data(), image_chunk_rows, 0, checksum);
    group.write("labels", {hsize_t(split->count)}, split->labels.data(), label_chunk_rows, 0,
                checksum);
    group.set_attribute("count", split->count);
  }
  write_packed_statistics(file, mean, std);
  file.flush();
  file.close();
}

namespace {

RawDataset read_raw(PackFormat format, const PackOptions& options) {
  switch (format) {
    case PackFormat::cifar10:
      return read_cifar10(options.source_dir);
    case PackFormat::cifar100:
      return read_cifar100(options.source_dir, options.labels == Cifar100Labels::fine);
    case PackFormat::mnist:
      return read_idx_dataset(options.source_dir, "mnist", kMnistClasses);
    case PackFormat::fashion_mnist:
      return read_idx_dataset(options.source_dir, "fashion-mnist", kFashionMnistClasses);
    case PackFormat::automatic:
    case PackFormat::folder:
      break;
  }
  DP_CHECK(false, "pack: no reader for format '{}'", enum_name(format));  // resolved, not folder
  return {};
}

// An option that only one format reads, given for another, would go silently unused.
void refuse_unread_options(PackFormat format, const std::set<std::string>& given) {
  using F = PackFormat;
  static const std::pair<const char*, PackFormat> kReadBy[] = {
      {"labels", F::cifar100},      {"image-size", F::folder}, {"jpeg-draft", F::folder},
      {"test-fraction", F::folder}, {"seed", F::folder},       {"channels", F::folder},
      {"threads", F::folder},       {"skip-bad", F::folder},   {"progress-every", F::folder}};
  for (const auto& [option, reader] : kReadBy)
    if (given.count(option) && format != reader)
      throw UsageError(fmt::format("--{}: only --format {} reads it; this pack is {}", option,
                                   enum_name(reader), enum_name(format)));
  if (given.count("seed") && !given.count("test-fraction"))
    throw UsageError("--seed: only a --test-fraction split reads it");
}

// Whether `path` (an existing regular file) is a dataset pack wrote: an HDF5 file (by its
// signature) whose root says so. An HDF5 file that cannot be opened (held open for writing by
// another program) is an error naming why, not "another kind of file".
bool is_packed_dataset(const std::string& path) {
  static const char kHdf5Signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  char start[8] = {};
  std::ifstream(path, std::ios::binary).read(start, sizeof start);
  if (std::memcmp(start, kHdf5Signature, sizeof start) != 0) return false;
  try {
    const h5::File file(path, h5::File::Mode::read);
    return file.has_attribute("format") && file.string_attribute("format") == packed::kFormat;
  } catch (const Error& e) {
    throw UsageError(
        fmt::format("--output: {} exists and cannot be opened to check that pack wrote it: {}",
                    path, e.what()));
  }
}

// Whether `path` lies inside folder `dir` (both resolved: links, "..", relative parts).
bool inside(const std::string& path, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code dir_ec, path_ec;
  const fs::path folder = fs::weakly_canonical(fs::absolute(dir), dir_ec);
  const fs::path file = fs::weakly_canonical(fs::absolute(path), path_ec);
  if (dir_ec || path_ec) return false;  // unresolvable: the scan reports the source's problem
  return std::mismatch(folder.begin(), folder.end(), file.begin(), file.end()).first ==
         folder.end();
}

// --output names a new file, or a dataset an earlier pack wrote: never a folder, a source
// file, a checkpoint, a device node, a link or any other file the rename would replace; and,
// for an image folder, never a path inside the tree being packed.
void check_output(const PackOptions& options, PackFormat format) {
  namespace fs = std::filesystem;
  const std::string& out = options.output_file;
  std::error_code ec;
  if (out.back() == '/' || fs::is_directory(out, ec))
    throw UsageError(fmt::format("--output: {} is a folder; name the file to write", out));
  if (format == PackFormat::folder && inside(out, options.source_dir))
    throw UsageError(fmt::format("--output: {} is inside --source {}; write it elsewhere", out,
                                 options.source_dir));
  check_no_leftover_tmp(out);
  check_replaceable_output(out,
                           {"--output", "pack", "a dataset dptrain pack wrote", is_packed_dataset});
}

}  // namespace

PackSummary pack_dataset(const PackOptions& options) {
  const double start = now_seconds();
  if (options.source_dir.empty()) throw UsageError("pack: no source directory given");
  if (options.output_file.empty()) throw UsageError("pack: no output file given");
  const PackFormat format = resolve_format(options);
  refuse_unread_options(format, options.given);
  check_output(options, format);
  PackSummary summary;
  if (format == PackFormat::folder) {
    write_then_rename(options.output_file, [&](const std::string& tmp) {
      summary = pack_image_folder(options, tmp);
      require_spread(summary, options.source_dir);
    });
  } else {
    const RawDataset raw = read_raw(format, options);
    channel_mean_std(raw.train, raw.channels, summary.mean, summary.std);
    require_spread(summary, options.source_dir);
    write_then_rename(options.output_file, [&](const std::string& tmp) {
      write_packed(raw, tmp, summary.mean, summary.std);
    });
    summary.train_count = raw.train.count;
    summary.test_count = raw.test.count;
    summary.height = raw.height;
    summary.width = raw.width;
    summary.channels = raw.channels;
    summary.class_names = raw.class_names;
    summary.sources = raw.sources;
  }
  summary.format = format;
  summary.output_file = options.output_file;
  summary.seconds = now_seconds() - start;
  return summary;
}

}  // namespace dp::data
