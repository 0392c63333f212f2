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
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, output, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw IoError(fmt::format("{}: cannot move the written file into place: {}", output_file,
                              ec.message()));
  }
}

}  // namespace dp
