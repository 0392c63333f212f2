// Checks of the Communicator contract shared by the tests of its implementations (MPI, and MPI
// through host staging), so each is held to the same expectations.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "comm/communicator.h"

namespace dp::testing {

// Rank r contributes {r, 10r}; every rank must receive all of them in rank order.
inline void expect_allgather_in_rank_order(Communicator& comm) {
  const int world = comm.size(), rank = comm.rank();
  double mine[2] = {double(rank), double(rank * 10)};
  std::vector<double> all(2 * world);
  comm.allgather(mine, 2, all.data());
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(all[2 * r], r);
    EXPECT_EQ(all[2 * r + 1], 10 * r);
  }
}

// Every rank starts with rank + 3; after a broadcast from the last rank all hold world + 2.
inline void expect_broadcast_from_last_rank(Communicator& comm, int64_t count) {
  const int world = comm.size();
  std::vector<float> data(count, float(comm.rank() + 3));
  comm.broadcast(data.data(), count, world - 1);
  for (float x : data) ASSERT_EQ(x, float(world + 2));
}

}  // namespace dp::testing
