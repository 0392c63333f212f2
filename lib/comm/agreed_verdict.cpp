#include "comm/agreed_verdict.h"

#include <mpi.h>

#include <chrono>
#include <thread>

#include "comm/mpi_session.h"

namespace dp {

void let_rank_zero_report_first() {
  int rank = 0;
  DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  if (rank != 0) std::this_thread::sleep_for(std::chrono::seconds(kAgreedVerdictGraceSeconds));
}

}  // namespace dp
