// main() of the CUDA backend test executables. Where no GPU is usable the tests do not run:
// main says why and exits with kSkipCode, which CTest's SKIP_RETURN_CODE turns into a
// visible "Skipped" for every test (a global gtest environment that skips would instead be
// reported as passed by gtest 1.12), unless DPTRAIN_REQUIRE_GPU=on (support/gpu_required.h).
// Listing tests (test discovery) works without a GPU.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "backend/cuda/device_probe.h"
#include "support/gpu_required.h"

namespace {
constexpr int kSkipCode = 77;  // keep in sync with SKIP_RETURN_CODE in CMakeLists.txt
}

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::strcmp(argv[i], "--gtest_list_tests") == 0;
  ::testing::InitGoogleTest(&argc, argv);
  if (!listing) {
    dp::CudaProbe probe = dp::probe_cuda();
    if (probe.device_count == 0 && !dp::test::gpu_required()) {
      std::printf("[  SKIPPED ] no usable GPU (%s): CUDA backend tests not run\n",
                  probe.reason.c_str());
      return kSkipCode;
    }
  }
  return RUN_ALL_TESTS();
}
