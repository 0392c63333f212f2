#include "data/image_folder_packer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "core/cpu_affinity.h"
#include "core/error.h"
#include "core/input_file.h"
#include "core/log.h"
#include "core/thread_team.h"
#include "core/timer.h"
#include "core/utf8.h"
#include "data/folder_source.h"
#include "data/image_decode.h"
#include "data/image_resize.h"
#include "data/pack_progress.h"
#include "data/sha256.h"
#include "data/streaming_pack_writer.h"

namespace dp::data {
namespace {

// One file's outcome. Exactly one of: pixels (decoded), error (bad input, a DataError's
// message naming the file), fatal (anything else: a bug or a failed allocation, rethrown).
struct DecodeSlot {
  DecodedImage image;
  std::string digest;  // SHA-256 of the file's bytes; empty when it could not be read
  std::string error;
  std::exception_ptr fatal;
};

// The digest of a file that is not an image, read in blocks rather than whole; none when it
// cannot be read. Taken with --skip-bad only (the skipped file still enters the tree's digest):
// without it the pack stops at this file, and hashing a large video first would delay that.
void digest_streamed(const std::string& path, DecodeSlot& slot) {
  try {
    slot.digest = sha256_file(path);
  } catch (const DataError&) {
  }
}

// `expected`: the size every image must have, where known and no --image-size resizes them; a
// file whose header gives another is not decoded (its slot gets that size and no pixels, which
// the consumer refuses or skips), so that a chunk of odd large photos takes no more memory than
// a chunk of the expected images.
void decode_one(const ImageFile& file, const PackOptions& options,
                const std::optional<ImageSize>& expected, DecodeSlot& slot) {
  // Per-thread buffers for the file and the full-size image, reused from file to file.
  thread_local std::vector<uint8_t> bytes;
  thread_local DecodedImage full;
  bool not_image = false;
  try {
    // Not read whole unless it starts as an image: a video left in a class folder may not fit
    // in memory.
    read_whole_file(file.path, bytes, [&](const std::vector<uint8_t>& start) {
      not_image = true;
      require_image_signature(start.data(), start.size(), file.path);
      not_image = false;
    });
    slot.digest = sha256_hex(bytes.data(), bytes.size());
    const ImageSize header =
        expected ? read_image_size(bytes.data(), bytes.size(), file.path) : ImageSize{};
    if (expected && !(header == *expected)) {  // refused or skipped from its header
      slot.image = DecodedImage{};
      slot.image.width = header.width;
      slot.image.height = header.height;
    } else {
      decode_image(bytes.data(), bytes.size(), options.channels, file.path, full,
                   options.jpeg_draft ? options.image_size : 0);
      if (options.image_size > 0)
        slot.image = resize_shorter_side_center_crop(full, options.image_size);
      else
        slot.image = full;
    }
  } catch (const DataError& e) {
    slot.image = DecodedImage{};
    slot.error = e.what();
    if (not_image && options.skip_bad) digest_streamed(file.path, slot);
  } catch (...) {
    slot.fatal = std::current_exception();
  }
  // An unusually large file's buffer is not kept for the rest of the pack.
  constexpr size_t kKeptBytes = size_t(64) << 20;
  if (bytes.capacity() > kKeptBytes) std::vector<uint8_t>().swap(bytes);
}

// Decodes files[first, first + count) on up to `threads` threads, started by the constructor;
// the destructor joins them, so an exception on the consuming side never leaves one running.
// Where the system refuses a thread (its thread limit, memory for stacks), the ones started
// share the batch; only when none starts is that an error.
class DecodeBatch {
 public:
  DecodeBatch(const std::vector<ImageFile>& files, size_t first, size_t count,
              const PackOptions& options, std::optional<ImageSize> expected, int threads)
      : slots_(count),
        team_(team_size(threads, count), [this, &files, first, count, &options, expected] {
          for (size_t i; (i = next_.fetch_add(1)) < count;) {
            decode_one(files[first + i], options, expected, slots_[i]);
            std::lock_guard<std::mutex> lock(mutex_);
            if (++decoded_ == slots_.size()) all_decoded_.notify_one();
          }
        }) {
    if (team_.started() == 0)
      throw UsageError(
          fmt::format("--threads: cannot start a decoding thread ({})", team_.refused()));
    if (!team_.refused().empty())
      refused_ = fmt::format("started {} of {} decoding threads ({})", team_.started(),
                             team_size(threads, count), team_.refused());
  }
  // Empty, or what the system refused: the caller reports it.
  const std::string& refused() const { return refused_; }
  DecodeBatch(const DecodeBatch&) = delete;
  DecodeBatch& operator=(const DecodeBatch&) = delete;
  // Waits for every slot, calling on_progress(files decoded so far) every kProgressTick
  // meanwhile (a chunk of large photos can take a minute).
  std::vector<DecodeSlot>& wait(const std::function<void(size_t)>& on_progress) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      while (!all_decoded_.wait_for(lock, kProgressTick,
                                    [this] { return decoded_ == slots_.size(); })) {
        const size_t decoded = decoded_;
        lock.unlock();  // the decoding threads go on while the line is written
        on_progress(decoded);
        lock.lock();
      }
    }
    team_.join();
    return slots_;
  }

 private:
  static int team_size(int threads, size_t files) {
    return std::max(1, std::min<int>(threads, int(files)));
  }
  static constexpr std::chrono::milliseconds kProgressTick{250};
  // What the threads use, constructed before them and destroyed after them (team_ is last).
  std::vector<DecodeSlot> slots_;
  std::atomic<size_t> next_{0};
  std::mutex mutex_;
  std::condition_variable all_decoded_;
  size_t decoded_ = 0;  // guarded by mutex_
  std::string refused_;
  ThreadTeam team_;
};

std::string source_name(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(dir), ec).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  // Stored as UTF-8 text (the dataset's name, its `sources` entry).
  return p.filename().empty() ? std::string("folder") : utf8::escaped(p.filename().string());
}

// How many files the plan gives each class in one split.
std::vector<int64_t> planned_per_class(const std::vector<ImageFile>& files, size_t classes) {
  std::vector<int64_t> planned(classes, 0);
  for (const auto& f : files) ++planned[size_t(f.label)];
  return planned;
}

// Runs `work` on the calling thread and up to threads - 1 more (fewer where the system refuses
// one), all joined before it returns; the first exception any of them threw is rethrown.
void run_on_threads(int threads, const std::function<void()>& work) {
  std::exception_ptr failed;
  std::mutex mutex;
  auto guarded = [&] {
    try {
      work();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!failed) failed = std::current_exception();
    }
  };
  {
    ThreadTeam helpers(threads - 1, guarded);  // the ones started share the work
    guarded();                                 // never throws: its failure is kept in `failed`
  }
  if (failed) std::rethrow_exception(failed);
}

// An image's size from the start of its file: the headers sit in the first KiB but for a
// JPEG's metadata (EXIF, a thumbnail, an ICC profile), so the whole file only when needed.
ImageSize header_size(const std::string& path, std::vector<uint8_t>& bytes) {
  if (!read_file_start(path, size_t{64} << 10, bytes)) {
    try {
      return read_image_size(bytes.data(), bytes.size(), path);
    } catch (const DataError&) {  // the header runs past the start: read it all
    }
    require_image_signature(bytes.data(), bytes.size(), path);  // unless it is no image
    read_whole_file(path, bytes);
  }
  return read_image_size(bytes.data(), bytes.size(), path);
}

// The size --skip-bad packs when no --image-size is given: the most common width x height in
// the files' headers (ties: the size met first), so that one odd file early in the tree cannot
// make every other file the wrong size. An unreadable header is left to the decoding pass.
struct CommonSize {
  ImageSize size;
  size_t count = 0, files = 0;
};
CommonSize most_common_size(const FolderPlan& plan, int threads) {
  std::vector<const ImageFile*> files;
  for (const auto* split : {&plan.train, &plan.test})
    for (const auto& f : *split) files.push_back(&f);
  std::vector<ImageSize> sizes(files.size());
  std::atomic<size_t> next{0};
  run_on_threads(threads, [&] {
    std::vector<uint8_t> bytes;
    for (size_t i; (i = next.fetch_add(1)) < files.size();) {
      try {
        sizes[i] = header_size(files[i]->path, bytes);
      } catch (const DataError&) {  // reported, or skipped, when the file is decoded
      }
    }
  });
  std::map<ImageSize, size_t> counts;
  for (const ImageSize& size : sizes)
    if (size.width > 0) ++counts[size];
  CommonSize best;
  best.files = files.size();
  for (const ImageSize& size : sizes)  // in file order: of equal counts, the first met wins
    if (size.width > 0 && counts[size] > best.count) {
      best.size = size;
      best.count = counts[size];
    }
  return best;
}

// Everything one packing run accumulates besides the pixels.
class FolderPacker {
 public:
  FolderPacker(const PackOptions& options, const FolderPlan& plan, const std::string& path,
               int threads)
      : options_(options), plan_(plan), path_(path), threads_(threads) {}
  // Every image must have `size` (described for messages as `source`, e.g. "the most common
  // size (9 of 10 images) is"); without this call, the first image packed sets it.
  void require_size(ImageSize size, std::string source) {
    size_ = size;
    size_source_ = std::move(source);
  }

  void pack_split(const std::string& split, const std::vector<ImageFile>& files,
                  PackProgress& progress);
  PackSummary finish();

 private:
  void consume(const std::string& split, const std::vector<ImageFile>& files, size_t first,
               std::vector<DecodeSlot>& slots);
  void open_writer(const DecodedImage& first);
  std::string wrong_size(const ImageFile& file, const DecodedImage& image) const;
  void report_refused_threads(const DecodeBatch& batch);

  const PackOptions& options_;
  const FolderPlan& plan_;
  std::string path_;
  int threads_;
  std::optional<StreamingPackWriter> writer_;
  PackedHeader header_;
  std::optional<ImageSize> size_;  // every image's width x height, once known
  std::string size_source_;        // where size_ came from, for messages
  Sha256 tree_digest_;
  std::map<std::pair<std::string, int>, int64_t> counts_;  // (split, label) -> images packed
  std::vector<std::string> skipped_;
  int64_t done_ = 0;
  std::vector<std::string> pending_splits_;  // splits met before the writer existed
  bool threads_refused_ = false;             // reported once a run
};

void FolderPacker::open_writer(const DecodedImage& first) {
  header_.name = source_name(options_.source_dir);
  header_.class_names = plan_.class_names;
  header_.height = first.height;
  header_.width = first.width;
  header_.channels = first.channels;
  writer_.emplace(path_, header_);
  for (const auto& s : pending_splits_) writer_->begin_split(s);
}

std::string FolderPacker::wrong_size(const ImageFile& file, const DecodedImage& image) const {
  if (!size_ || (image.width == size_->width && image.height == size_->height)) return {};
  return fmt::format("{}: {}x{} pixels, but {} {}x{}; pass --image-size to resize", file.path,
                     image.width, image.height, size_source_, size_->width, size_->height);
}

void FolderPacker::report_refused_threads(const DecodeBatch& batch) {
  if (batch.refused().empty() || threads_refused_) return;
  threads_refused_ = true;
  log::info("pack: warning: {}; continuing with those (a smaller --threads avoids this)",
            batch.refused());
}

void FolderPacker::pack_split(const std::string& split, const std::vector<ImageFile>& files,
                              PackProgress& progress) {
  if (writer_)
    writer_->begin_split(split);
  else
    pending_splits_.push_back(split);  // begun when the first image gives the shape
  // Files per chunk: as many as 128 MiB of the packed images hold, but one per thread at
  // least. Their size is known from --image-size, else once the first image is packed (or
  // --skip-bad read the most common one): before, a chunk is one file per thread (16 large
  // photos would be gigabytes); after, a file of another size is not decoded (decode_one).
  const auto batch = [&](size_t first) {
    const size_t side = size_t(options_.image_size);
    const size_t image_bytes =
        side > 0 ? side * side * size_t(options_.channels)
        : size_  ? size_t(size_->width) * size_t(size_->height) * size_t(options_.channels)
                 : 0;
    const size_t chunk = image_bytes == 0 ? size_t(threads_)
                                          : std::clamp<size_t>(kFolderChunkBytes / image_bytes,
                                                               size_t(threads_), kFolderChunkFiles);
    return std::make_unique<DecodeBatch>(files, first, std::min(chunk, files.size() - first),
                                         options_, side > 0 ? std::nullopt : size_, threads_);
  };
  size_t pos = 0;
  auto current = batch(0);
  while (current) {
    std::vector<DecodeSlot>& slots =
        current->wait([&](size_t decoded) { progress.update(done_ + int64_t(decoded)); });
    report_refused_threads(*current);
    const size_t first = pos;
    pos += slots.size();
    // The next chunk decodes while this one is checked and written; but until an image is
    // packed its size, and with it the next chunk's length, is unknown.
    const bool size_known = size_.has_value();
    if (!size_known) consume(split, files, first, slots);
    std::unique_ptr<DecodeBatch> next;
    if (pos < files.size()) next = batch(pos);
    if (size_known) consume(split, files, first, slots);
    progress.update(done_);
    current = std::move(next);
  }
}

void FolderPacker::consume(const std::string& split, const std::vector<ImageFile>& files,
                           size_t first, std::vector<DecodeSlot>& slots) {
  std::vector<uint8_t> images, labels;
  size_t bytes = 0;
  for (const auto& slot : slots) bytes += slot.image.pixels.size();
  images.reserve(bytes);
  for (size_t i = 0; i < slots.size(); ++i) {
    DecodeSlot& slot = slots[i];
    const ImageFile& file = files[first + i];
    ++done_;
    if (slot.fatal) std::rethrow_exception(slot.fatal);
    tree_digest_.update(file.relative.data(), file.relative.size());
    const std::string line = fmt::format(" {}\n", slot.digest.empty() ? "-" : slot.digest);
    tree_digest_.update(line.data(), line.size());
    if (slot.error.empty()) slot.error = wrong_size(file, slot.image);
    if (!slot.error.empty()) {
      if (!options_.skip_bad)
        throw DataError(slot.error + " (--skip-bad packs the rest, listing what it leaves out)");
      log::info("pack: skipped {}", utf8::escaped(slot.error));
      // Listed in the file relative to the source folder (messages start with the path), as
      // the UTF-8 text the attribute declares.
      const bool prefixed = slot.error.rfind(file.path, 0) == 0;
      skipped_.push_back(utf8::escaped(
          prefixed ? file.relative + slot.error.substr(file.path.size()) : slot.error));
      continue;
    }
    if (!size_) require_size({slot.image.width, slot.image.height}, file.path + " has");
    if (!writer_) open_writer(slot.image);
    images.insert(images.end(), slot.image.pixels.begin(), slot.image.pixels.end());
    slot.image.pixels = {};
    labels.push_back(uint8_t(file.label));
    ++counts_[{split, file.label}];
  }
  if (writer_) writer_->append(int64_t(labels.size()), images.data(), labels.data());
}

PackSummary FolderPacker::finish() {
  if (!writer_)
    throw DataError(fmt::format("{}: none of the images could be packed", options_.source_dir));
  PackSummary summary;
  std::vector<std::string> counts;
  for (const char* split : {"train", "test"}) {
    const std::vector<int64_t> planned = planned_per_class(
        std::string(split) == "train" ? plan_.train : plan_.test, plan_.class_names.size());
    for (size_t c = 0; c < plan_.class_names.size(); ++c) {
      const int64_t packed = counts_[{split, int(c)}];
      // The plan refuses an empty class folder; skipping must not make one either. (A
      // --test-fraction split may plan none of a small class's files for test.)
      if (packed == 0 && planned[c] > 0)
        throw DataError(
            fmt::format("{}: every {} image of class '{}' was bad (--skip-bad "
                        "would leave the class empty there)",
                        options_.source_dir, split, plan_.class_names[c]));
      counts.push_back(fmt::format("{}/{} {}", split, plan_.class_names[c], packed));
    }
  }
  summary.sources = {{header_.name + "/", tree_digest_.finish_hex()}};
  auto [mean, std] = writer_->finish({{"sources", {summary.sources[0].first + " " +
                                                   summary.sources[0].second}},
                                      {"source_counts", counts},
                                      {"skipped", skipped_}});
  summary.format = PackFormat::folder;
  summary.train_count = writer_->count("train");
  summary.test_count = writer_->count("test");
  summary.height = header_.height;
  summary.width = header_.width;
  summary.channels = header_.channels;
  summary.class_names = header_.class_names;
  summary.mean = mean;
  summary.std = std;
  summary.skipped = skipped_;
  return summary;
}

// A class that --test-fraction leaves without a test image (round(fraction x its count) is 0)
// cannot be measured on the test split: said in the log, not refused (the split is valid).
void note_classes_without_test_images(const FolderPlan& plan, double fraction) {
  std::vector<bool> tested(plan.class_names.size(), false);
  for (const ImageFile& f : plan.test) tested[f.label] = true;
  std::vector<std::string> untested;
  for (size_t c = 0; c < tested.size(); ++c)
    if (!tested[c]) untested.push_back(plan.class_names[c]);
  if (!untested.empty())
    log::info(
        "note: --test-fraction {} gives no test image to {} of the {} classes (too few "
        "images): {}",
        fraction, untested.size(), tested.size(), fmt::join(untested, ", "));
}

}  // namespace

PackSummary pack_image_folder(const PackOptions& options, const std::string& path) {
  if (options.channels != 1 && options.channels != 3)
    throw UsageError(fmt::format("--channels: {} (1 or 3)", options.channels));
  // No output image larger than the largest one decoded (an HDF5 chunk, one image, must also
  // stay under 4 GiB).
  const int64_t max_size = std::sqrt(double(kMaxImagePixels));
  if (options.image_size < 0 || options.image_size > max_size)
    throw UsageError(
        fmt::format("--image-size: {} (1 to {}, at most {} pixels as for any image "
                    "decoded; or 0 to keep the sizes)",
                    options.image_size, max_size, kMaxImagePixels));
  if (options.jpeg_draft && options.image_size == 0)
    throw UsageError("--jpeg-draft: needs --image-size (the size the draft must keep)");
  if (options.threads < 0 || size_t(options.threads) > kFolderChunkFiles)
    throw UsageError(fmt::format("--threads: {} (0 for every core, or 1 to {})", options.threads,
                                 kFolderChunkFiles));
  if (!(options.progress_seconds >= 0 && options.progress_seconds <= 1e6))
    throw UsageError(fmt::format("--progress-every: {} (seconds in [0, 1e6]; 0: every update)",
                                 options.progress_seconds));
  const FolderPlan plan =
      scan_image_folder(options.source_dir, options.test_fraction, options.seed);
  if (plan.split_by_fraction) note_classes_without_test_images(plan, options.test_fraction);
  const int threads =
      options.threads > 0 ? options.threads : std::min(usable_cores(), int(kFolderChunkFiles));
  const int64_t total = int64_t(plan.train.size() + plan.test.size());
  log::info("pack: {} images in {} classes (train {}, test {}) from {}, {} decoding threads",
            total, plan.class_names.size(), plan.train.size(), plan.test.size(),
            options.source_dir, threads);
  FolderPacker packer(options, plan, path, threads);
  if (options.skip_bad && options.image_size == 0) {
    log::info("pack: --skip-bad without --image-size: reading each image's size first");
    const CommonSize common = most_common_size(plan, threads);
    if (common.count > 0) {
      log::info("pack: --skip-bad keeps {}x{} images, the size of {} of the {}", common.size.width,
                common.size.height, common.count, common.files);
      packer.require_size(common.size, fmt::format("the most common size ({} of {} images) is",
                                                   common.count, common.files));
    }
  }
  {
    PackProgress progress(total, PackProgress::automatic(), options.progress_seconds);
    packer.pack_split("train", plan.train, progress);
    packer.pack_split("test", plan.test, progress);
  }
  return packer.finish();
}

}  // namespace dp::data
