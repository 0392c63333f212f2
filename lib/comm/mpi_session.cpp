#include "comm/mpi_session.h"

#include <cstdlib>

namespace dp {

std::string mpi_error_string(int code) {
  char buffer[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, buffer, &length) != MPI_SUCCESS) return "unknown MPI error";
  return std::string(buffer, length);
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  // FUNNELED: only the main thread calls MPI (the prefetch thread never does).
  DP_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  // Errors come back as codes we turn into exceptions, instead of MPI aborting silently.
  DP_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  MPI_Comm local;
  DP_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL,
                                   &local));
  DP_MPI_CHECK(MPI_Comm_rank(local, &local_rank_));
  DP_MPI_CHECK(MPI_Comm_size(local, &local_size_));
  MPI_Comm_free(&local);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace dp
