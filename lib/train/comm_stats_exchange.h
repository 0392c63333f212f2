// --sync-bn's exchange (nn/stats_exchange.h) over the run's MPI communicator: the batch norm
// layers' per-channel numbers travel as host doubles, whatever the backend.
#pragma once

#include "comm/communicator.h"
#include "nn/stats_exchange.h"

namespace dp {

class CommStatsExchange final : public nn::StatsExchange {
 public:
  explicit CommStatsExchange(Communicator& comm) : comm_(comm) {}
  int size() const override { return comm_.size(); }
  void allgather(const double* mine, int64_t count, double* all) override {
    comm_.allgather(mine, count, all);
  }

 private:
  Communicator& comm_;
};

}  // namespace dp
