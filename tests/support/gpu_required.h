// DPTRAIN_REQUIRE_GPU=on (tests/gpu/run_on_device.sh sets it on the GPU machine): a GPU test
// never skips for want of a usable GPU there; it runs and fails on the error, so a broken driver
// or runtime cannot pass as "skipped". Unset or off (CI, machines without a GPU): they skip.
#pragma once

#include "core/env_switch.h"

namespace dp::test {

inline bool gpu_required() { return env_switch("DPTRAIN_REQUIRE_GPU", "off", "on"); }

}  // namespace dp::test
