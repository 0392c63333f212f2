// The collectives training needs, behind one interface so gradients can travel over MPI
// (host buffers) or NCCL (GPU buffers) without the trainer knowing which.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace dp {

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
  virtual void broadcast(float* data, int64_t count, int root) = 0;
  virtual void barrier() = 0;
};

// MPI_COMM_WORLD on host memory.
std::unique_ptr<Communicator> make_mpi_communicator();

}  // namespace dp
