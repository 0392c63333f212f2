// The one place oneDNN failures become dp::Error: every public CPU-backend op runs its oneDNN
// work inside `with_dnnl`, so a bad shape or an unsupported geometry reaches the user as a
// one-line message naming the op and the oneDNN status instead of an uncaught dnnl::error.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <utility>

#include "core/error.h"

namespace dp::cpu {

template <typename F>
decltype(auto) with_dnnl(const char* op, F&& body) {
  try {
    return std::forward<F>(body)();
  } catch (const dnnl::error& e) {
    throw Error(ExitCode::internal, fmt::format("oneDNN failed in {}: {} (status {})", op, e.what(),
                                                static_cast<int>(e.status)));
  }
}

}  // namespace dp::cpu
