#include "comm/mpi_session.h"

#include <cstdlib>
#include <string_view>

namespace dp {

std::optional<std::string> slurm_launch_mismatch(const char* slurm_ntasks, const char* slurm_procid,
                                                 int mpi_world_size, int mpi_rank) {
  auto differs = [](const char* text, int value) {
    return text != nullptr && *text != '\0' && std::string_view(text) != std::to_string(value);
  };
  if (differs(slurm_ntasks, mpi_world_size) || differs(slurm_procid, mpi_rank))
    return fmt::format(
        "Slurm started this process as task {} of {}, but MPI sees rank {} of {}: srun is not "
        "launching MPI (try `srun --mpi=pmix` or `--mpi=pmi2`, see `srun --mpi=list`), or use "
        "mpirun inside the allocation (then with --signal=B:USR1@120, see README \"Slurm\")",
        slurm_procid ? slurm_procid : "?", slurm_ntasks ? slurm_ntasks : "?", mpi_rank,
        mpi_world_size);
  return std::nullopt;
}

std::string mpi_error_string(int code) {
  char buffer[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, buffer, &length) != MPI_SUCCESS) return "unknown MPI error";
  return std::string(buffer, length);
}

std::optional<std::string> thread_level_problem(int provided) {
  if (provided >= MPI_THREAD_FUNNELED) return std::nullopt;
  return fmt::format(
      "the MPI library provides thread level {} (MPI_THREAD_SINGLE), dptrain needs "
      "MPI_THREAD_FUNNELED: its loader and watchdog threads run beside the main thread, which "
      "alone calls MPI; use an MPI built with thread support",
      provided);
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  // FUNNELED: only the main thread calls MPI (the prefetch thread never does).
  DP_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided_));
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

MpiSession::MpiSession(int* argc, char*** argv) : runtime_(argc, argv) {
  if (auto problem = thread_level_problem(runtime_.provided()))
    throw Error(ExitCode::communication, *problem);
  // Errors come back as codes we turn into exceptions, instead of MPI aborting silently.
  DP_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  {
    struct NodeComm {  // this node's ranks; freed on every path, a failed query's included
      MPI_Comm comm = MPI_COMM_NULL;
      ~NodeComm() {
        if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
      }
    } local;
    DP_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL,
                                     &local.comm));
    DP_MPI_CHECK(MPI_Comm_rank(local.comm, &local_rank_));
    DP_MPI_CHECK(MPI_Comm_size(local.comm, &local_size_));
  }
  if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr) {
    // Every singleton stops on its own (no abort: the processes share no communicator).
    if (auto mismatch = slurm_launch_mismatch(std::getenv("SLURM_NTASKS"),
                                              std::getenv("SLURM_PROCID"), world_size_, rank_))
      throw UsageError(*mismatch);
  }
}

void MpiSession::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace dp
