// libFuzzer target for the IDX parser (tests/reliability/fuzz.sh builds and runs it).
#include "parser_fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dp::fuzz::idx_one_input(data, size);
  return 0;
}
