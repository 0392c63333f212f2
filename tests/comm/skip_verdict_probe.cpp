// A probe for mpi_test_main.h's verdict (not a test itself: test_skip_verdict.py runs it under
// mpirun). DP_PROBE_SKIP names the ranks that skip ("all", "none" or one rank number);
// DP_PROBE_FAIL one rank that fails (unset: none).
#include <cstdlib>
#include <string>

#include "mpi_test_main.h"

namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

bool named(const char* variable) {
  const char* v = std::getenv(variable);
  if (!v) return false;
  const std::string s = v;
  return s == "all" || s == std::to_string(world_rank());
}

TEST(SkipVerdictProbe, SkipsOrFailsWhereTold) {
  if (named("DP_PROBE_SKIP")) GTEST_SKIP() << "told to skip on this rank";
  EXPECT_FALSE(named("DP_PROBE_FAIL")) << "told to fail on this rank";
}

}  // namespace

DP_MPI_TEST_MAIN()
