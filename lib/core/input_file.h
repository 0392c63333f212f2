// A file opened for reading with C stdio, closed on every path: the one owner of a FILE* for
// the readers that stream a file in blocks (hashes, fingerprints, whole-file reads).
#pragma once

#include <cstdio>
#include <memory>
#include <string>

namespace dp {

using InputFile = std::unique_ptr<FILE, int (*)(FILE*)>;

// Empty (test with !) when the file cannot be opened; errno says why.
inline InputFile open_input_file(const std::string& path) {
  return InputFile(std::fopen(path.c_str(), "rb"), std::fclose);
}

}  // namespace dp
