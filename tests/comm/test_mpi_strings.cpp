// allgather_strings / broadcast_strings (comm/mpi_strings.h) under mpirun -np 2 and 3: every
// rank's strings arrive whole on every rank, whatever their lengths and bytes (the checks that
// use them once cut paths at 4000 bytes and option values at 896).
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>
#include <vector>

#include "comm/mpi_strings.h"

namespace dp {
namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Rank r's strings: r + 1 of them, of lengths that differ between ranks, one longer than any
// fixed record was, one empty and one holding a NUL byte.
std::vector<std::string> strings_of(int r) {
  std::vector<std::string> out;
  for (int i = 0; i <= r; ++i) out.push_back(std::string(size_t(5000 * i + r), char('a' + r)));
  out.push_back("");
  out.push_back(std::string("nul\0inside", 10) + std::to_string(r));
  return out;
}

TEST(MpiStrings, AllgatherHandsEveryRankEveryRanksStringsWhole) {
  const auto all = allgather_strings(strings_of(world_rank()));
  ASSERT_EQ(int(all.size()), world_size());
  for (int r = 0; r < world_size(); ++r) EXPECT_EQ(all[r], strings_of(r)) << "rank " << r;
}

TEST(MpiStrings, AllgatherOfNothingGivesEmptyLists) {
  const auto all = allgather_strings({});
  ASSERT_EQ(int(all.size()), world_size());
  for (const auto& list : all) EXPECT_TRUE(list.empty());
}

TEST(MpiStrings, BroadcastHandsEveryRankRankZerosStrings) {
  EXPECT_EQ(broadcast_strings(strings_of(world_rank())), strings_of(0));
}

}  // namespace
}  // namespace dp
