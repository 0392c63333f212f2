// DP_MPI_CHECK (comm/mpi_session.h) under mpirun: a failing MPI call (MPI_ERRORS_RETURN, which
// MpiSession sets) throws dp::Error(communication) in the message format every library's check
// macro shares (core/error.h throw_library_error): file:line, the call, MPI's own reason.
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>

#include "comm/mpi_session.h"

namespace dp {
namespace {

TEST(MpiCheck, FailingCallThrowsCommunicationErrorNamingCallAndReason) {
  int size = 0, value = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  try {
    DP_MPI_CHECK(MPI_Bcast(&value, 1, MPI_INT, size, MPI_COMM_WORLD));  // no rank `size`
    FAIL() << "MPI_Bcast to a root past the last rank did not throw";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.code(), ExitCode::communication);
    EXPECT_EQ(message.rfind(std::string(__FILE__) + ":", 0), 0u) << message;
    EXPECT_NE(message.find(": MPI_Bcast(&value, 1, MPI_INT, size, MPI_COMM_WORLD) failed: "),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("root"), std::string::npos) << message;  // MPI_ERR_ROOT's words
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(MpiCheck, SucceedingCallPassesQuietly) {
  int rank = -1;
  DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  EXPECT_GE(rank, 0);
}

}  // namespace
}  // namespace dp
