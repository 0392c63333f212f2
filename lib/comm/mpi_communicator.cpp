// Communicator over MPI_COMM_WORLD. Counts above INT_MAX are split into chunks, since the
// MPI-3 interface takes int counts.
#include <mpi.h>

#include <algorithm>
#include <climits>

#include "comm/communicator.h"
#include "comm/mpi_session.h"

namespace dp {

namespace {

template <typename T>
void chunked(T* data, int64_t count, auto&& call) {
  for (int64_t done = 0; done < count;) {
    int n = static_cast<int>(std::min<int64_t>(count - done, INT_MAX / 2));
    call(data + done, n);
    done += n;
  }
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void allreduce_sum(float* data, int64_t count) override { sum(data, count, MPI_FLOAT); }
  void allreduce_sum(double* data, int64_t count) override { sum(data, count, MPI_DOUBLE); }
  void allreduce_sum(int64_t* data, int64_t count) override { sum(data, count, MPI_INT64_T); }

  void broadcast(float* data, int64_t count, int root) override {
    if (size_ == 1) return;
    chunked(data, count, [&](float* p, int n) {
      DP_MPI_CHECK(MPI_Bcast(p, n, MPI_FLOAT, root, MPI_COMM_WORLD));
    });
  }
  void barrier() override { DP_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }

 private:
  template <typename T>
  void sum(T* data, int64_t count, MPI_Datatype type) {
    if (size_ == 1) return;
    chunked(data, count, [&](T* p, int n) {
      DP_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p, n, type, MPI_SUM, MPI_COMM_WORLD));
    });
  }
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace dp
