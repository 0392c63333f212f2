// MPI for the whole process: MpiSession initialises MPI on construction and finalises it on
// destruction (RAII, through MpiRuntime), and knows this process's rank, world size and
// node-local rank.
// DP_MPI_CHECK turns an MPI error code into a dp::Error(communication) with MPI's message.
#pragma once

#include <mpi.h>

#include <optional>
#include <string>

#include "core/error.h"

namespace dp {

std::string mpi_error_string(int code);

// Under Slurm, srun without MPI support starts N independent singletons that would each
// train alone (with MPI libraries that allow it: Open MPI's MPI_Init refuses such a launch
// itself, with its own message about Slurm's PMI, before this check). Given the
// SLURM_NTASKS / SLURM_PROCID values (null when unset) and MPI's view, returns the error to
// stop with when they disagree. Not consulted when mpirun started the ranks
// (OMPI_COMM_WORLD_SIZE set): its -np decides, inside an allocation of any size.
std::optional<std::string> slurm_launch_mismatch(const char* slurm_ntasks, const char* slurm_procid,
                                                 int mpi_world_size, int mpi_rank);

// MPI_Init_thread's `provided` level against what dptrain needs: FUNNELED, since its loader
// and watchdog threads run beside the main thread, which alone calls MPI. Returns the error
// to stop with when the library provides less.
std::optional<std::string> thread_level_problem(int provided);

}  // namespace dp

#define DP_MPI_CHECK(expr)                                                                \
  do {                                                                                    \
    int dp_mpi_status_ = (expr);                                                          \
    if (dp_mpi_status_ != MPI_SUCCESS)                                                    \
      ::dp::throw_library_error(::dp::ExitCode::communication, __FILE__, __LINE__, #expr, \
                                ::dp::mpi_error_string(dp_mpi_status_));                  \
  } while (0)

namespace dp {

// MPI_Init_thread on construction, MPI_Finalize on destruction (unless something finalised
// already): MpiSession's first member, so a constructor that throws after MPI started still
// finalises it.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  int provided() const { return provided_; }  // the thread level MPI gives

 private:
  int provided_ = 0;
};

class MpiSession {
 public:
  // Throws dp::Error(communication) where MPI lacks the thread level dptrain needs, and a
  // UsageError when Slurm's task count or rank disagrees with MPI's (see
  // slurm_launch_mismatch).
  MpiSession(int* argc, char*** argv);

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  // Ends every rank of the job with `code` (MPI_Abort): an error on one rank must not leave
  // the others waiting in a collective forever.
  [[noreturn]] void abort(int code) const;

 private:
  MpiRuntime runtime_;
  int rank_ = 0, world_size_ = 1, local_rank_ = 0, local_size_ = 1;
};

}  // namespace dp
