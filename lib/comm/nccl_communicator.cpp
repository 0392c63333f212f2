#include "comm/nccl_communicator.h"

#include <chrono>
#include <exception>
#include <limits>
#include <thread>

#include "backend/cuda/runtime_handles.h"
#include "comm/mpi_session.h"
#include "comm/nccl_check.h"
#include "comm/nccl_handle.h"
#include "core/error.h"
#include "core/timer.h"

namespace dp {

namespace {

class NcclCommunicator;

class NcclPendingMean : public PendingReduction {
 public:
  explicit NcclPendingMean(NcclCommunicator& comm) : comm_(comm) {}
  cudaEvent_t event() const { return event_.get(); }
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator& comm_;
  cuda::Event event_ = cuda::make_sync_event();
  bool done_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(cudaStream_t compute_stream, double timeout_seconds)
      : compute_stream_(compute_stream), timeout_(timeout_seconds) {
    DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    ncclUniqueId id;
    if (rank_ == 0) DP_NCCL_CHECK(ncclGetUniqueId(&id));
    DP_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD));
    // Non-blocking: even initialisation can then be abandoned when a peer never joins.
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    enqueued(ncclCommInitRankConfig(comm_.out(), size_, id, rank_, &config), "ncclCommInitRank");
  }

  // While an error unwinds, peers may be gone: comm_'s own destructor then aborts, which is
  // sure not to block.
  ~NcclCommunicator() override {
    if (std::uncaught_exceptions() == 0) comm_.destroy_after(stream_.get());
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }

  void allreduce_sum(float* data, int64_t count) override { sum(data, count, ncclFloat32); }
  void allreduce_sum(double* data, int64_t count) override { sum(data, count, ncclFloat64); }
  void allreduce_sum(int64_t* data, int64_t count) override { sum(data, count, ncclInt64); }

  std::unique_ptr<PendingReduction> start_allreduce_mean(float* data, int64_t count) override {
    auto pending = std::make_unique<NcclPendingMean>(*this);
    after_compute();
    enqueued(ncclAllReduce(data, data, count, ncclFloat32, ncclAvg, live(), stream_.get()),
             "ncclAllReduce(avg)");
    DP_CUDA_CHECK(cudaEventRecord(pending->event(), stream_.get()));
    return pending;
  }

  void broadcast(float* data, int64_t count, int root) override {
    after_compute();
    enqueued(ncclBroadcast(data, data, count, ncclFloat32, root, live(), stream_.get()),
             "ncclBroadcast");
    synchronize("ncclBroadcast");
  }
  void allgather(const double* mine, int64_t count, double* all) override {
    after_compute();
    enqueued(ncclAllGather(mine, all, count, ncclFloat64, live(), stream_.get()), "ncclAllGather");
    synchronize("ncclAllGather");
  }
  void barrier() override {
    enqueued(ncclAllReduce(scratch_.get(), scratch_.get(), 1, ncclFloat32, ncclSum, live(),
                           stream_.get()),
             "ncclAllReduce(barrier)");
    synchronize("barrier");
  }

  // Waits for `event` with error polling and the timeout (see the header).
  void wait_event(cudaEvent_t event, const char* what) {
    const double start = now_seconds();
    while (!event_done(event, what)) {
      if (now_seconds() - start > timeout_)
        abort_with(
            fmt::format("{} did not finish within {} s (a rank stalled or died)", what, timeout_));
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  bool event_done(cudaEvent_t event, const char* what) {
    cudaError_t state = cudaEventQuery(event);
    if (state == cudaSuccess) return true;
    if (state != cudaErrorNotReady) DP_CUDA_CHECK(state);
    check_async(what);
    return false;
  }

 private:
  template <typename T>
  void sum(T* data, int64_t count, ncclDataType_t type) {
    after_compute();
    enqueued(ncclAllReduce(data, data, count, type, ncclSum, live(), stream_.get()),
             "ncclAllReduce");
    synchronize("ncclAllReduce");
  }

  // The collective stream waits for what the compute stream has queued so far.
  void after_compute() {
    DP_CUDA_CHECK(cudaEventRecord(compute_done_.get(), compute_stream_));
    DP_CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), compute_done_.get(), 0));
  }

  ncclComm_t live() {
    if (comm_.get() == nullptr)
      throw Error(ExitCode::communication, "NCCL communicator used after it was aborted");
    return comm_.get();
  }

  // A non-blocking communicator may answer ncclInProgress: poll until the call is enqueued.
  void enqueued(ncclResult_t result, const char* what) {
    if (result != ncclSuccess && result != ncclInProgress)
      abort_with(fmt::format("{} failed: {}", what, nccl_reason(result)));
    const double start = now_seconds();
    for (;;) {
      const ncclResult_t state = async_state(what);
      if (state == ncclSuccess) return;
      if (state != ncclInProgress)
        abort_with(fmt::format("{} failed: {}", what, nccl_reason(state)));
      if (now_seconds() - start > timeout_)
        abort_with(fmt::format("{} did not complete within {} s", what, timeout_));
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  // The communicator's state; a query that fails aborts it too, as any NCCL failure here.
  ncclResult_t async_state(const char* what) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t query = ncclCommGetAsyncError(live(), &state);
    if (query != ncclSuccess)
      abort_with(fmt::format("{}: ncclCommGetAsyncError failed: {}", what, nccl_reason(query)));
    return state;
  }

  void check_async(const char* what) {
    const ncclResult_t state = async_state(what);
    if (state != ncclSuccess && state != ncclInProgress)
      abort_with(fmt::format("{}: asynchronous NCCL error: {}", what, nccl_reason(state)));
  }

  void synchronize(const char* what) {
    const cuda::Event done = cuda::make_sync_event();
    DP_CUDA_CHECK(cudaEventRecord(done.get(), stream_.get()));
    wait_event(done.get(), what);
  }

  [[noreturn]] void abort_with(const std::string& message) {
    comm_.abort();
    throw Error(ExitCode::communication,
                fmt::format("NCCL rank {} of {}: {}; communicator aborted", rank_, size_, message));
  }

  int rank_ = 0, size_ = 1;
  cudaStream_t compute_stream_;
  double timeout_;
  // All collectives run on their own stream, so they never serialise with compute except
  // where an event says so.
  cuda::Stream stream_ = cuda::make_nonblocking_stream();
  cuda::Event compute_done_ = cuda::make_sync_event();
  cuda::DeviceArray<float> scratch_ = cuda::make_device_array<float>(1);  // the barrier's operand
  NcclComm comm_;  // last: destroyed (or aborted) while the stream still exists
};

bool NcclPendingMean::test() {
  if (!done_) done_ = comm_.event_done(event_.get(), "ncclAllReduce(avg)");
  return done_;
}

void NcclPendingMean::wait() {
  if (done_) return;
  comm_.wait_event(event_.get(), "ncclAllReduce(avg)");
  done_ = true;
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(CUstream_st* compute_stream,
                                                     double timeout_seconds) {
  // The option was validated where it was read (collective_timeout_problem).
  DP_CHECK(timeout_seconds >= 0, "collective timeout {} s", timeout_seconds);
  const double limit =
      timeout_seconds == 0 ? std::numeric_limits<double>::infinity() : timeout_seconds;
  return std::make_unique<NcclCommunicator>(compute_stream, limit);
}

}  // namespace dp
