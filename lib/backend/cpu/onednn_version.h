// The oneDNN version as loaded at run time (the shared library may be newer than the headers
// the build saw): the CPU backend's name and the build record print the same text.
#pragma once

#include <fmt/format.h>

#include <oneapi/dnnl/dnnl.h>
#include <string>

namespace dp {

inline std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return fmt::format("{}.{}.{}", v->major, v->minor, v->patch);
}

}  // namespace dp
