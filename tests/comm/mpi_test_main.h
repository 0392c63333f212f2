// main() for GoogleTest programs that run under mpirun: MPI is initialised once for the whole
// program (MpiSession), every rank runs every test, rank 0 prints the usual report and other
// ranks print only their failures. Every rank returns the same exit code, agreed over MPI, so
// mpirun's code (the first non-zero one) is the verdict whichever rank exits first:
//   1   some rank failed a test, or a test was skipped on some ranks and run on others (a skip
//       means "this machine lacks it", which holds for every rank or none);
//   77  every test was skipped on every rank and none failed (CTest's SKIP_RETURN_CODE);
//   0   otherwise.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "comm/mpi_session.h"

namespace dp::testing {

constexpr int kSkipCode = 77;  // keep in sync with SKIP_RETURN_CODE in tests/comm/CMakeLists.txt

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

// This rank's tests that ran, in the same order on every rank, and which of them it skipped.
inline std::vector<const ::testing::TestInfo*> tests_run(std::vector<int>& skipped) {
  std::vector<const ::testing::TestInfo*> run;
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  for (int s = 0; s < unit.total_test_suite_count(); ++s) {
    const ::testing::TestSuite& suite = *unit.GetTestSuite(s);
    for (int t = 0; t < suite.total_test_count(); ++t) {
      const ::testing::TestInfo* info = suite.GetTestInfo(t);
      if (!info->should_run()) continue;
      run.push_back(info);
      skipped.push_back(info->result()->Skipped() ? 1 : 0);
    }
  }
  return run;
}

// The exit code every rank returns (see the top of this file).
inline int agreed_exit_code(bool failed, int rank, int size) {
  std::vector<int> skipped;
  const std::vector<const ::testing::TestInfo*> run = tests_run(skipped);
  std::vector<int> skipped_on(skipped.size(), 0);
  MPI_Allreduce(skipped.data(), skipped_on.data(), static_cast<int>(skipped.size()), MPI_INT,
                MPI_SUM, MPI_COMM_WORLD);
  bool split = false, all_skipped = !run.empty();
  for (size_t i = 0; i < run.size(); ++i) {
    all_skipped = all_skipped && skipped_on[i] == size;
    if (skipped_on[i] == 0 || skipped_on[i] == size) continue;
    split = true;
    if (rank == 0)
      std::fprintf(stderr, "%s.%s: skipped on %d of %d ranks and run on the others: a failure\n",
                   run[i]->test_suite_name(), run[i]->name(), skipped_on[i], size);
  }
  int mine = failed || split ? 1 : 0, any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any) return 1;
  if (all_skipped && rank == 0)
    std::printf("every test skipped on all %d ranks: exit %d (skipped)\n", size, kSkipCode);
  return all_skipped ? kSkipCode : 0;
}

inline int run_mpi_tests(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(mpi.rank()));
  }
  const bool failed = RUN_ALL_TESTS() != 0;
  return agreed_exit_code(failed, mpi.rank(), mpi.world_size());
}

}  // namespace dp::testing

#define DP_MPI_TEST_MAIN() \
  int main(int argc, char** argv) { return dp::testing::run_mpi_tests(argc, argv); }
