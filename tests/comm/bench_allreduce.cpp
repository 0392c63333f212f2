// Allreduce bandwidth as nccl-tests reports it: for each message size, the mean time of an
// in-place float sum over all ranks, algbw = bytes / time and busbw = algbw * 2(n-1)/n (the
// ring's share of the traffic each link carries, comparable across rank counts).
//   mpirun -np 2 bench_allreduce [--comm mpi|nccl] [--min-bytes 8] [--max-bytes 67108864]
//                                [--iters 20] [--warmup 5]
// --comm nccl needs a build with the CUDA stack and a GPU per rank.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/mpi_session.h"
#include "core/timer.h"
#ifdef DPTRAIN_WITH_NCCL
#include <cuda_runtime_api.h>

#include "backend/cuda/runtime_handles.h"
#include "comm/nccl_check.h"
#include "comm/nccl_communicator.h"
#endif

namespace {

struct Options {
  std::string comm = "mpi";
  long long min_bytes = 8, max_bytes = 64LL << 20;
  int iters = 20, warmup = 5;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i], value = argv[i + 1];
    if (key == "--comm")
      o.comm = value;
    else if (key == "--min-bytes")
      o.min_bytes = std::atoll(value.c_str());
    else if (key == "--max-bytes")
      o.max_bytes = std::atoll(value.c_str());
    else if (key == "--iters")
      o.iters = std::atoi(value.c_str());
    else if (key == "--warmup")
      o.warmup = std::atoi(value.c_str());
    else
      throw dp::UsageError("bench_allreduce: unknown option " + key);
  }
  if (o.comm != "mpi" && o.comm != "nccl") throw dp::UsageError("--comm must be mpi or nccl");
  if (o.min_bytes < 4 || o.max_bytes < o.min_bytes || o.iters < 1 || o.warmup < 0)
    throw dp::UsageError("bench_allreduce: bad sizes or iteration counts");
  return o;
}

int run(const Options& o) {
  const long long max_count = o.max_bytes / 4;
  std::unique_ptr<dp::Communicator> comm;
  float* data = nullptr;
  std::vector<float> host;
#ifdef DPTRAIN_WITH_NCCL
  dp::cuda::DeviceArray<float> device;
#endif
  if (o.comm == "mpi") {
    comm = dp::make_mpi_communicator();
    host.assign(max_count, 1.0f);
    data = host.data();
  } else {
#ifdef DPTRAIN_WITH_NCCL
    int devices = 0, rank = 0;
    DP_CUDA_CHECK(cudaGetDeviceCount(&devices));
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    DP_CUDA_CHECK(cudaSetDevice(rank % devices));
    device = dp::cuda::make_device_array<float>(max_count);
    data = device.get();
    DP_CUDA_CHECK(cudaMemset(data, 0, max_count * sizeof(float)));
    comm = dp::make_nccl_communicator();
#else
    throw dp::UsageError("--comm nccl: this build has no NCCL");
#endif
  }
  const int n = comm->size();
  if (comm->rank() == 0) {
    std::printf("# allreduce (sum, float, in place) over %s, %d ranks\n", comm->name().c_str(), n);
    std::printf("# %12s %12s %12s %12s %12s\n", "size(B)", "count", "time(us)", "algbw(GB/s)",
                "busbw(GB/s)");
  }
  for (long long bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 2) {
    const long long count = bytes / 4;
    for (int i = 0; i < o.warmup; ++i) comm->allreduce_sum(data, count);
    comm->barrier();
    const double start = dp::now_seconds();
    for (int i = 0; i < o.iters; ++i) comm->allreduce_sum(data, count);
    double elapsed = (dp::now_seconds() - start) / o.iters;
    // The slowest rank's time is the collective's time (over MPI: host memory either way).
    DP_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    const double algbw = bytes / elapsed / 1e9;
    const double busbw = algbw * 2.0 * (n - 1) / n;
    if (comm->rank() == 0)
      std::printf("  %12lld %12lld %12.1f %12.3f %12.3f\n", bytes, count, elapsed * 1e6, algbw,
                  busbw);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dp::MpiSession mpi(&argc, &argv);
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_allreduce: rank %d: %s\n", mpi.rank(), e.what());
    if (mpi.world_size() > 1) mpi.abort(1);
    return 1;
  }
}
