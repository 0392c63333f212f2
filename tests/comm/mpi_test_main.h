// main() for GoogleTest programs that run under mpirun: MPI is initialised once for the whole
// program (MpiSession), every rank runs every test, rank 0 prints the usual report and other
// ranks print only their failures, and the exit code is non-zero on every rank when any rank
// failed, so mpirun's exit code reports a failure wherever it happened.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>

#include "comm/mpi_session.h"

namespace dp::testing {

class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "rank %d: %s:%d: failure\n%s\n", rank_,
                   r.file_name() ? r.file_name() : "?", r.line_number(), r.summary());
  }

 private:
  int rank_;
};

inline int run_mpi_tests(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(mpi.rank()));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}

}  // namespace dp::testing

#define DP_MPI_TEST_MAIN() \
  int main(int argc, char** argv) { return dp::testing::run_mpi_tests(argc, argv); }
