// libFuzzer target for the JPEG/PNG decoder and the resize of `pack --format folder`
// (tests/reliability/fuzz.sh builds and runs it).
#include "parser_fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dp::fuzz::image_one_input(data, size);
  return 0;
}
