// How batch norm layers reach the other ranks under --sync-bn (nn/sync_batchnorm.h): the
// trainer hands the model's ParameterStore one of these around its MPI communicator.
#pragma once

#include <cstdint>

namespace dp::nn {

class StatsExchange {
 public:
  virtual ~StatsExchange() = default;
  virtual int size() const = 0;
  // Collective: all[r * count + i] = rank r's mine[i], the same bits on every rank.
  virtual void allgather(const double* mine, int64_t count, double* all) = 0;
};

}  // namespace dp::nn
