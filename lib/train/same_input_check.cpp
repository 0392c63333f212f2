#include "train/same_input_check.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "comm/agreed_verdict.h"
#include "comm/mpi_session.h"
#include "comm/mpi_strings.h"
#include "core/error.h"
#include "core/input_file.h"
#include "data/sha256.h"

namespace dp {
namespace {

constexpr size_t kEdgeBytes = 1 << 20;

}  // namespace

std::string input_fingerprint(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return "";
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return "";
  InputFile f = open_input_file(path);
  if (!f) return "";
  data::Sha256 hash;
  std::vector<uint8_t> buffer(kEdgeBytes);
  auto hash_range = [&](uint64_t offset, uint64_t count) {
    if (std::fseek(f.get(), long(offset), SEEK_SET) != 0) return false;
    const size_t got = std::fread(buffer.data(), 1, count, f.get());
    hash.update(buffer.data(), got);
    return got == count;
  };
  const uint64_t head = std::min<uint64_t>(size, kEdgeBytes);
  const uint64_t tail = std::min<uint64_t>(size - head, kEdgeBytes);
  if (!hash_range(0, head) || !hash_range(size - tail, tail)) return "";
  return std::to_string(size) + " " + hash.finish_hex();
}

void check_same_input_on_all_ranks(const std::string& option, const std::string& path) {
  int size = 1;
  DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  if (size == 1) return;
  // Each rank's fingerprint, then its path.
  const auto all = allgather_strings({input_fingerprint(path), path});
  auto fingerprint_of = [&](int r) { return all[r][0]; };
  auto size_of = [&](int r) {
    const std::string fp = fingerprint_of(r);
    return fp.substr(0, fp.find(' '));
  };
  auto describe = [&](int r) { return fmt::format("{} ({} bytes)", all[r][1], size_of(r)); };
  const std::string first = fingerprint_of(0);
  for (int r = 1; r < size; ++r) {
    const std::string other = fingerprint_of(r);
    if (first.empty() || other.empty() || other == first) continue;
    const std::string message = fmt::format(
        "option {}: rank {} reads {}, which is not the same file as rank 0's {}{}: every rank "
        "must read the same file",
        option, r, describe(r), describe(0),
        size_of(r) == size_of(0) ? " (the same size, other bytes)" : "");
    throw_agreed_verdict(DataError(message));
  }
}

}  // namespace dp
