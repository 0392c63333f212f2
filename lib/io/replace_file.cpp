#include "io/replace_file.h"

#include <filesystem>

#include "core/error.h"

namespace dp {

void write_then_rename(const std::string& output_file,
                       const std::function<void(const std::string& tmp)>& write) {
  namespace fs = std::filesystem;
  const fs::path output(output_file);
  const fs::path tmp(output_file + ".tmp");
  std::error_code ec;
  if (output.has_parent_path()) fs::create_directories(output.parent_path(), ec);
  try {
    write(tmp.string());
    fs::rename(tmp, output);
  } catch (const fs::filesystem_error& e) {
    fs::remove(tmp, ec);
    throw IoError(
        fmt::format("{}: cannot move the written file into place: {}", output_file, e.what()));
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

}  // namespace dp
