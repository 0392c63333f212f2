#include "comm/mpi_strings.h"

#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <numeric>

#include "comm/mpi_session.h"
#include "core/error.h"

namespace dp {
namespace {

// Each string as its 8-byte length, then its bytes.
std::vector<char> pack(const std::vector<std::string>& strings) {
  std::vector<char> bytes;
  for (const std::string& s : strings) {
    const uint64_t n = s.size();
    bytes.insert(bytes.end(), reinterpret_cast<const char*>(&n),
                 reinterpret_cast<const char*>(&n) + sizeof n);
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  return bytes;
}

std::vector<std::string> unpack(const char* bytes, uint64_t size) {
  std::vector<std::string> strings;
  for (uint64_t at = 0; at < size;) {
    uint64_t n = 0;
    std::memcpy(&n, bytes + at, sizeof n);
    strings.emplace_back(bytes + at + sizeof n, n);
    at += sizeof n + n;
  }
  return strings;
}

// MPI counts are ints. Every rank checks the same agreed sizes, so all throw alike.
int mpi_count(uint64_t bytes) {
  DP_CHECK(bytes <= uint64_t(INT32_MAX), "{} bytes of strings exceed one MPI call", bytes);
  return int(bytes);
}

}  // namespace

std::vector<std::vector<std::string>> allgather_strings(const std::vector<std::string>& mine) {
  int rank = 0, size = 1;
  DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  const std::vector<char> bytes = pack(mine);
  const uint64_t own = bytes.size();
  std::vector<uint64_t> sizes(size);
  DP_MPI_CHECK(
      MPI_Allgather(&own, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD));
  mpi_count(std::accumulate(sizes.begin(), sizes.end(), uint64_t{0}));
  std::vector<int> counts(size), offsets(size);
  for (int r = 0; r < size; ++r) counts[r] = mpi_count(sizes[r]);
  std::exclusive_scan(counts.begin(), counts.end(), offsets.begin(), 0);
  std::vector<char> all(offsets.back() + counts.back());
  DP_MPI_CHECK(MPI_Allgatherv(bytes.data(), counts[rank], MPI_CHAR, all.data(),
                              counts.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD));
  std::vector<std::vector<std::string>> by_rank;
  for (int r = 0; r < size; ++r) by_rank.push_back(unpack(all.data() + offsets[r], sizes[r]));
  return by_rank;
}

std::vector<std::string> broadcast_strings(const std::vector<std::string>& mine) {
  int rank = 0;
  DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  std::vector<char> bytes = rank == 0 ? pack(mine) : std::vector<char>{};
  uint64_t size = bytes.size();
  DP_MPI_CHECK(MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
  bytes.resize(size);
  DP_MPI_CHECK(MPI_Bcast(bytes.data(), mpi_count(size), MPI_CHAR, 0, MPI_COMM_WORLD));
  return unpack(bytes.data(), size);
}

}  // namespace dp
