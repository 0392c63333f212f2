// Communicator over MPI_COMM_WORLD. Counts above INT_MAX are split into chunks, since the
// MPI-3 interface takes int counts.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "comm/communicator.h"
#include "comm/mpi_session.h"

namespace dp {

namespace {

constexpr int64_t kMaxChunk = INT_MAX / 2;

template <typename T>
void chunked(T* data, int64_t count, auto&& call) {
  for (int64_t done = 0; done < count;) {
    int n = static_cast<int>(std::min<int64_t>(count - done, kMaxChunk));
    call(data + done, n);
    done += n;
  }
}

// One MPI_Iallreduce per chunk; the 1/size scaling happens once, when all chunks are done.
class MpiPendingMean : public PendingReduction {
 public:
  MpiPendingMean(float* data, int64_t count, int size) : data_(data), count_(count), size_(size) {
    if (size_ == 1) {
      done_ = true;
      return;
    }
    chunked(data, count, [&](float* p, int n) {
      MPI_Request request;
      DP_MPI_CHECK(
          MPI_Iallreduce(MPI_IN_PLACE, p, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request));
      requests_.push_back(request);
    });
  }
  // An unfinished request is deliberately not waited for: that happens only while an error
  // unwinds, a peer may be gone, and the job is about to end through MPI_Abort.
  ~MpiPendingMean() override = default;

  bool test() override {
    if (done_) return true;
    int flag = 0;
    DP_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag,
                             MPI_STATUSES_IGNORE));
    if (flag) complete();
    return done_;
  }
  void wait() override {
    if (done_) return;
    DP_MPI_CHECK(
        MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    complete();
  }

 private:
  void complete() {
    const float scale = 1.0f / static_cast<float>(size_);
    for (int64_t i = 0; i < count_; ++i) data_[i] *= scale;
    done_ = true;
  }
  float* data_;
  int64_t count_;
  int size_;
  bool done_ = false;
  std::vector<MPI_Request> requests_;
};

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

  std::unique_ptr<PendingReduction> start_allreduce_mean(float* data, int64_t count) override {
    return std::make_unique<MpiPendingMean>(data, count, size_);
  }

  void broadcast(float* data, int64_t count, int root) override {
    if (size_ == 1) return;
    chunked(data, count, [&](float* p, int n) {
      DP_MPI_CHECK(MPI_Bcast(p, n, MPI_FLOAT, root, MPI_COMM_WORLD));
    });
  }
  void allgather(const double* mine, int64_t count, double* all) override {
    DP_CHECK(count <= kMaxChunk, "allgather of {} elements exceeds one MPI call", count);
    DP_MPI_CHECK(MPI_Allgather(mine, static_cast<int>(count), MPI_DOUBLE, all,
                               static_cast<int>(count), MPI_DOUBLE, MPI_COMM_WORLD));
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

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

}  // namespace dp
