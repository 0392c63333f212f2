#include "train/run_directory.h"

#include <chrono>
#include <ctime>
#include <filesystem>

#include "core/error.h"

namespace fs = std::filesystem;

namespace dp {

RunDirectory::RunDirectory(const std::string& output_dir, const std::string& run_name,
                           Existing existing, bool create)
    : path_((fs::path(output_dir) / run_name).string()) {
  if (!create) return;
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create run directory: {}", path_, ec.message()));
  if (existing == Existing::refuse && fs::exists(metrics()))
    throw UsageError(fmt::format(
        "{} already holds a run; choose another --run-name, pass --overwrite, or continue it "
        "with --resume auto", path_));
}

std::string default_run_name(const std::string& arch, const std::string& dataset) {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return fmt::format("{}-{}-{}", arch, dataset, stamp);
}

}  // namespace dp
