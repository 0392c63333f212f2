#include "train/checkpoint_files.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>
#include <regex>
#include <set>
#include <system_error>

#include "core/error.h"
#include "core/log.h"
#include "io/file_verify.h"
#include "train/checkpoint_keys.h"
#include "train/run_directory.h"

namespace fs = std::filesystem;

namespace dp {

namespace key = checkpoint_keys;

namespace {

const std::regex kNamedCheckpoint(R"(checkpoint-e(\d+)-s(\d+)(?:-v(\d+))?\.h5)");

// (finished epochs, optimizer steps, version) as a named checkpoint's file name gives them
// (checkpoint.h5's are in its contents only); version 1 where the name has none. None for
// another name, one whose numbers do not fit int64 included (no run writes it).
using NamedPosition = std::tuple<int64_t, int64_t, int64_t>;
std::optional<NamedPosition> position_in_name(const fs::path& path) {
  std::smatch m;
  const std::string name = path.filename().string();
  if (!std::regex_match(name, m, kNamedCheckpoint)) return std::nullopt;
  int64_t numbers[3] = {0, 0, 1};
  for (int i = 0; i < 3; ++i) {
    if (!m[i + 1].matched) continue;
    const char* first = &*m[i + 1].first;
    const char* last = first + m[i + 1].length();
    const auto [end, error] = std::from_chars(first, last, numbers[i]);
    if (error != std::errc() || end != last) return std::nullopt;  // too large
  }
  return NamedPosition{numbers[0], numbers[1], numbers[2]};
}

bool is_checkpoint_name(const std::string& name) {
  return name == kCheckpointFileName || position_in_name(name);
}

// What stands where a file should: a folder, a link to nothing, a pipe...
std::string kind_of_non_file(const fs::path& path) {
  std::error_code ec;
  const fs::file_type type = fs::status(path, ec).type();
  if (type == fs::file_type::not_found)
    return fs::is_symlink(path, ec) ? "a link to nothing" : "missing";
  if (type == fs::file_type::directory) return "a folder";
  if (type == fs::file_type::fifo) return "a named pipe";
  if (type == fs::file_type::socket) return "a socket";
  if (type == fs::file_type::block || type == fs::file_type::character) return "a device";
  return ec ? ec.message() : "not a regular file";
}

}  // namespace

int64_t CheckpointFile::global_step() const { return meta.int_or(key::kStep, 0); }

std::string named_checkpoint_file(int64_t epochs_done, int64_t global_step, int64_t version) {
  if (version > 1)
    return fmt::format("checkpoint-e{:04d}-s{:06d}-v{}.h5", epochs_done, global_step, version);
  return fmt::format("checkpoint-e{:04d}-s{:06d}.h5", epochs_done, global_step);
}

std::string checkpoint_file_for(const std::string& dir, CheckpointPosition position) {
  const auto [epochs_done, step_in_epoch, global_step] = position;
  // The versions of this name in `dir` that must stay: a checkpoint at another position, or
  // something other than a file. Each one's metadata is read once.
  std::set<int64_t> kept;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto named = position_in_name(it->path());
    if (!named || std::get<0>(*named) != epochs_done || std::get<1>(*named) != global_step)
      continue;
    const int64_t version = std::get<2>(*named);
    std::error_code status_ec;
    if (!fs::is_regular_file(it->symlink_status(status_ec))) {
      kept.insert(version);
      continue;
    }
    const std::string path = it->path().string();
    try {
      if (CheckpointFile{path, read_checkpoint_meta(path)}.position() == position)
        return path;  // this point of the run written again
      kept.insert(version);
    } catch (const Error&) {
      // not a checkpoint: replaced
    }
  }
  int64_t version = 1;
  while (kept.count(version)) ++version;
  return (fs::path(dir) / named_checkpoint_file(epochs_done, global_step, version)).string();
}

std::vector<CheckpointFile> find_checkpoints(const std::string& dir,
                                             std::vector<std::string>* unreadable) {
  std::vector<CheckpointFile> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || !is_checkpoint_name(name)) continue;
    try {
      found.push_back({entry.path().string(), read_checkpoint_meta(entry.path().string())});
    } catch (const Error& e) {
      log::info("warning: skipping {}: {}", entry.path().string(), e.what());
      if (unreadable) unreadable->push_back(entry.path().string());
    }
  }
  // Newest position first. Between equal positions (checkpoint.h5 is a link to the newest
  // named one) the order does not matter, but keep it stable for the log.
  std::sort(found.begin(), found.end(), [](const CheckpointFile& a, const CheckpointFile& b) {
    if (a.position() != b.position()) return a.position() > b.position();
    return a.path < b.path;
  });
  return found;
}

std::vector<std::string> checkpoints_after(const std::string& dir, CheckpointPosition resumed) {
  std::vector<std::string> after, unreadable;
  for (const CheckpointFile& file : find_checkpoints(dir, &unreadable))
    if (file.position() > resumed) after.push_back(file.path);
  // One that does not open is placed by its name; checkpoint.h5, unplaced and unusable, too.
  // A version above 1 of the resumed checkpoint's name was written after the plain one.
  const NamedPosition resumed_named{std::get<0>(resumed), std::get<2>(resumed), 1};
  for (const std::string& path : unreadable) {
    const auto named = position_in_name(path);
    if (!named || *named > resumed_named) after.push_back(path);
  }
  return after;
}

void prune_named_checkpoints(const std::string& dir, int keep) {
  std::vector<std::string> unreadable, named;
  for (const CheckpointFile& file : find_checkpoints(dir, &unreadable))  // newest first
    if (position_in_name(file.path)) named.push_back(file.path);
  // Then those that do not open, newest first by their names.
  std::vector<std::pair<NamedPosition, std::string>> by_name;
  for (const std::string& path : unreadable)
    if (const auto position = position_in_name(path)) by_name.emplace_back(*position, path);
  std::sort(by_name.rbegin(), by_name.rend());
  for (const auto& [position, path] : by_name) named.push_back(path);
  std::error_code ec;
  for (size_t i = std::max(keep, 0); i < named.size(); ++i) {
    fs::remove(named[i], ec);
    if (ec) log::info("warning: cannot delete old checkpoint {}: {}", named[i], ec.message());
  }
}

std::vector<std::string> checkpoint_names(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_checkpoint_name(it->path().filename().string()))
      found.push_back(it->path().filename().string());
  if (ec) throw IoError(fmt::format("{}: cannot list the run directory: {}", dir, ec.message()));
  return found;
}

std::string newest_verified_checkpoint(const std::string& dir,
                                       std::vector<std::string>* skipped_out) {
  // Its place taken by something else than a file, the run's next checkpoint could not be
  // saved: said before the run starts, not at its first checkpoint.
  std::error_code ec;
  const fs::path latest = fs::path(dir) / kCheckpointFileName;
  if (fs::exists(fs::symlink_status(latest, ec)) && !fs::is_regular_file(latest, ec))
    throw UsageError(
        fmt::format("option --resume auto: {} is not a file ({}); move it out of the run directory",
                    latest.string(), kind_of_non_file(latest)));
  // A checkpoint that does not even open (a damaged header, a truncated file) is as corrupted
  // as one whose checksums fail; its position is unknown, so it counts against none.
  std::vector<std::string> skipped;
  for (const auto& candidate : find_checkpoints(dir, &skipped)) {
    const FileVerification check = verify_file(candidate.path);
    if (check.ok) {
      if (!skipped.empty())
        log::info(
            "warning: --resume auto: resuming from {}, the newest checkpoint that passed "
            "verification ({} skipped as corrupted)",
            candidate.path, skipped.size());
      if (skipped_out) *skipped_out = std::move(skipped);
      return candidate.path;
    }
    // checkpoint.h5 and the newest named checkpoint are one file: both are skipped.
    log::info("warning: --resume auto: skipping corrupted checkpoint {}: {}", candidate.path,
              check.problem);
    skipped.push_back(candidate.path);
  }
  // Starting from scratch would write over the run's metrics: stop and let the user decide.
  if (!skipped.empty())
    throw DataError(fmt::format(
        "option --resume auto: every checkpoint in {} is corrupted or does not open ({}, {} in "
        "all); restore one from a good copy, or start the run again with --resume none "
        "--overwrite",
        dir, skipped.front(), skipped.size()));
  return "";
}

ResumeRequest parse_resume_option(const std::string& text) {
  if (text == "none") return {};
  if (text == "auto") return {ResumeRequest::Kind::automatic, ""};
  std::error_code ec;
  if (!text.empty() && !fs::exists(text, ec))
    throw UsageError(fmt::format("option --resume: '{}': {} (or auto|none)", text,
                                 ec ? ec.message() : "no such file"));
  if (text.empty() || !fs::is_regular_file(text, ec))
    throw UsageError(
        fmt::format("option --resume: '{}' is not a checkpoint file (or auto|none)", text));
  return {ResumeRequest::Kind::file, text};
}

std::string resolve_resume(const ResumeRequest& request, const std::string& run_dir,
                           std::vector<std::string>* skipped) {
  switch (request.kind) {
    case ResumeRequest::Kind::none:
      return "";
    case ResumeRequest::Kind::automatic:
      return newest_verified_checkpoint(run_dir, skipped);
    case ResumeRequest::Kind::file:
      return parse_resume_option(request.file).file;  // again: it may have gone since
  }
  DP_CHECK(false, "resume kind {} unknown", static_cast<int>(request.kind));
  return "";
}

}  // namespace dp
