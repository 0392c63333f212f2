// MPI for the whole process: MpiSession initialises MPI on construction and finalises it on
// destruction (RAII), and knows this process's rank, world size and node-local rank.
// DP_MPI_CHECK turns an MPI error code into a dp::Error(communication) with MPI's message.
#pragma once

#include <mpi.h>

#include <string>

#include "core/error.h"

namespace dp {

std::string mpi_error_string(int code);

}  // namespace dp

#define DP_MPI_CHECK(expr)                                                                  \
  do {                                                                                      \
    int dp_mpi_status_ = (expr);                                                            \
    if (dp_mpi_status_ != MPI_SUCCESS)                                                      \
      throw ::dp::Error(::dp::ExitCode::communication,                                      \
                        ::fmt::format("{} failed: {}", #expr,                               \
                                      ::dp::mpi_error_string(dp_mpi_status_)));             \
  } while (0)

namespace dp {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  // Ends every rank of the job with `code` (MPI_Abort): an error on one rank must not leave
  // the others waiting in a collective forever.
  [[noreturn]] void abort(int code) const;

 private:
  int rank_ = 0, world_size_ = 1, local_rank_ = 0, local_size_ = 1;
};

}  // namespace dp
