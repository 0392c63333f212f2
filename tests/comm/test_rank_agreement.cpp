// What the ranks must agree on before any backend-specific collective (run under mpirun -np 2
// and 3): the device each chose (a rank whose CUDA failed under --device auto must stop the
// job, on every rank, with one line naming each rank's device), and MPI's thread level.
#include <gtest/gtest.h>

#include "comm/communicator.h"
#include "mpi_test_main.h"
#include "train/backend_choice.h"

namespace dp {
namespace {

TEST(BackendAgreement, SameDeviceOnEveryRankPasses) {
  auto comm = make_mpi_communicator();
  EXPECT_NO_THROW(check_same_device(Device::cpu, "cpu backend", *comm));
}

TEST(BackendAgreement, OneRankOnAnotherDeviceStopsEveryRankNamingThem) {
  auto comm = make_mpi_communicator();
  // The last rank's CUDA "failed": it fell back to the CPU while the others took the GPU.
  const bool fell_back = comm->rank() == comm->size() - 1;
  const Device mine = fell_back ? Device::cpu : Device::cuda;
  try {
    check_same_device(mine, fell_back ? "no GPU: injected failure" : "cuda backend", *comm);
    FAIL() << "rank " << comm->rank() << " went on";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::communication);
    const std::string message = e.what();
    const std::string last = "rank " + std::to_string(comm->size() - 1) + " cpu";
    EXPECT_NE(message.find("rank 0 cuda"), std::string::npos) << message;
    EXPECT_NE(message.find(last), std::string::npos) << message;
    EXPECT_NE(message.find("--device"), std::string::npos) << message;
    if (fell_back) {
      EXPECT_NE(message.find("injected failure"), std::string::npos) << message;
    }
  }
}

// --precision bf16 under --device auto on nodes of which only some CPUs have bf16 arithmetic:
// the ranks would train at different precisions, so every rank stops, naming each one's.
TEST(BackendAgreement, CpuRanksAtDifferentPrecisionsStopEveryRank) {
  auto comm = make_mpi_communicator();
  const bool without_bf16 = comm->rank() == comm->size() - 1;
  try {
    check_same_device(Device::cpu, "cpu backend", *comm, /*cpu_bf16=*/!without_bf16);
    FAIL() << "rank " << comm->rank() << " went on";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::communication);
    const std::string message = e.what();
    EXPECT_NE(message.find("rank 0 cpu bf16"), std::string::npos) << message;
    const std::string last = "rank " + std::to_string(comm->size() - 1) + " cpu)";
    EXPECT_NE(message.find(last), std::string::npos) << message;
    EXPECT_NE(message.find("--precision fp32"), std::string::npos) << message;
  }
  EXPECT_NO_THROW(check_same_device(Device::cpu, "cpu backend", *comm, true));
}

TEST(MpiThreadLevel, FunneledOrMoreIsEnoughSingleIsRefused) {
  EXPECT_FALSE(thread_level_problem(MPI_THREAD_FUNNELED));
  EXPECT_FALSE(thread_level_problem(MPI_THREAD_MULTIPLE));
  const auto problem = thread_level_problem(MPI_THREAD_SINGLE);
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("MPI_THREAD_FUNNELED"), std::string::npos) << *problem;
}

}  // namespace
}  // namespace dp

DP_MPI_TEST_MAIN()
