// The collectives training needs, behind one interface so gradients can travel over MPI
// (host buffers) or NCCL (GPU buffers) without the trainer knowing which. Pointers are in
// the memory the communicator works on: host memory for MPI, device memory for NCCL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace dp {

// A nonblocking allreduce in flight. Its buffer must stay untouched until test() has
// returned true or wait() has returned; from then on it holds the result.
class PendingReduction {
 public:
  virtual ~PendingReduction() = default;
  // Drives progress (MPI progresses nonblocking collectives only inside MPI calls) and says
  // whether the reduction is complete.
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;
  // In-place sums over all ranks.
  virtual void allreduce_sum(float* data, int64_t count) = 0;
  virtual void allreduce_sum(double* data, int64_t count) = 0;
  virtual void allreduce_sum(int64_t* data, int64_t count) = 0;
  // Starts an in-place average over all ranks (sum, then 1/size()); the gradient reducer
  // runs one per bucket while backward goes on.
  virtual std::unique_ptr<PendingReduction> start_allreduce_mean(float* data, int64_t count) = 0;
  virtual void broadcast(float* data, int64_t count, int root) = 0;
  // all[r * count + i] = rank r's mine[i].
  virtual void allgather(const double* mine, int64_t count, double* all) = 0;
  virtual void barrier() = 0;
};

// MPI_COMM_WORLD on host memory.
std::unique_ptr<Communicator> make_mpi_communicator();

}  // namespace dp
