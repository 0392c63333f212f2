// A file opened for reading with C stdio, closed on every path: the one owner of a FILE* for
// the readers that stream a file in blocks (hashes, fingerprints, whole-file reads).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dp {

using InputFile = std::unique_ptr<FILE, int (*)(FILE*)>;

// Empty (test with !) when the file cannot be opened; errno says why.
inline InputFile open_input_file(const std::string& path) {
  return InputFile(std::fopen(path.c_str(), "rb"), std::fclose);
}

// Called with a file's first block (64 KiB, or the whole file when shorter): throws to refuse
// the file before the rest is read (a multi-GB file that is not an image).
using StartCheck = std::function<void(const std::vector<uint8_t>& start)>;

// The whole file into `bytes`, reusing its storage; a DataError naming the file when it cannot
// be opened ("cannot open: <reason>") or read ("read failed").
void read_whole_file(const std::string& path, std::vector<uint8_t>& bytes,
                     const StartCheck& check_start = {});
// The same for at most the first `max_bytes`; returns whether that is the whole file.
bool read_file_start(const std::string& path, size_t max_bytes, std::vector<uint8_t>& bytes);

}  // namespace dp
