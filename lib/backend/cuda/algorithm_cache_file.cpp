#include "backend/cuda/algorithm_cache_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "core/log.h"

namespace dp::cuda {
namespace {

constexpr const char* kFormat = "dptrain cudnn algorithms 1";
constexpr const char* kContext = "context: ";

}  // namespace

AlgorithmCacheFile::AlgorithmCacheFile(std::string path, std::string context)
    : path_(std::move(path)), context_(std::move(context)) {
  if (!path_.empty()) load();
}

std::optional<AlgorithmCacheFile::Choice> AlgorithmCacheFile::find(const std::string& key) const {
  const auto it = choices_.find(key);
  if (it == choices_.end()) return std::nullopt;
  return it->second;
}

void AlgorithmCacheFile::remember(const std::string& key, Choice choice) {
  choices_[key] = choice;
  if (!path_.empty() && writable_) save();
}

void AlgorithmCacheFile::load() {
  std::ifstream in(path_);
  if (!in) return;  // none yet: the first search writes it
  std::string line;
  const auto ignore = [&](const std::string& why) {
    log::info("warning: ignoring the cuDNN algorithm cache {}: {}; searching afresh", path_, why);
    choices_.clear();
  };
  if (!std::getline(in, line) || line != kFormat) return ignore("not a dptrain algorithm cache");
  if (!std::getline(in, line) || line != kContext + context_)
    return ignore(fmt::format("written for another GPU, cuDNN or options ('{}')", line));
  for (int number = 3; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string key, rest;
    Choice choice;
    if (!(fields >> key >> choice.algorithm >> choice.math) || (fields >> rest))
      return ignore(fmt::format("line {} is not '<key> <algorithm> <math type>'", number));
    choices_[key] = choice;
  }
  log::info("cuDNN algorithms: {} choices from {}", choices_.size(), path_);
}

// Whole, through a tmp of this process's own: a reader sees the old file or the new one. Not
// synced (write_durably's way): a cache a crash loses costs one search, one it damages is
// ignored by load(), and the choices are saved after every search.
void AlgorithmCacheFile::save() {
  char host[256] = "";
  (void)gethostname(host, sizeof host - 1);  // ranks of several hosts may share the file
  const std::string tmp = fmt::format("{}.tmp.{}.{}", path_, host, getpid());
  std::string failure;
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << kFormat << '\n' << kContext << context_ << '\n';
    for (const auto& [key, choice] : choices_)
      out << key << ' ' << choice.algorithm << ' ' << choice.math << '\n';
    out.close();
    std::error_code ec;
    if (!out)
      failure = "cannot write " + tmp;
    else if (std::filesystem::rename(tmp, path_, ec); ec)
      failure = "cannot rename it into place: " + ec.message();
    else
      return;
  }
  std::error_code ignored;
  std::filesystem::remove(tmp, ignored);
  log::info("warning: the cuDNN algorithm cache {}: {}; this run's choices are not kept", path_,
            failure);
  writable_ = false;
}

}  // namespace dp::cuda
