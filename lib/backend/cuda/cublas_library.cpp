#include "backend/cuda/cublas_library.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <string>
#include <type_traits>

#include "core/error.h"

namespace dp::cuda {
namespace {

// By soname first, so LD_LIBRARY_PATH and the RUNPATH choose as they do for linked libraries;
// then the file in the folder the build found cuBLAS in. The library stays loaded for the
// process's life, as a linked one would: cuBLAS registers its own exit handlers when it loads,
// and unloading it could run them before handles in static storage are destroyed.
void* open_cublas() {
  void* lib = dlopen(DP_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (lib) return lib;
  const std::string by_name = dlerror();
  const std::string built_with = std::string(DP_CUBLAS_DIR) + "/" + DP_CUBLAS_SONAME;
  lib = dlopen(built_with.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib) return lib;
  throw Error(ExitCode::internal, fmt::format("cannot load cuBLAS: {}; {}", by_name, dlerror()));
}

// The hand-written type must name the exported overload (checked unevaluated: no reference
// to the symbol, which is not linked).
static_assert(std::is_same_v<decltype(static_cast<CublasGemmEx>(&cublasGemmEx)), CublasGemmEx>);

template <typename F>
void resolve(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f)
    throw Error(ExitCode::internal,
                fmt::format("cuBLAS ({}) lacks {}: {}", DP_CUBLAS_SONAME, name, dlerror()));
}

CublasApi load_cublas() {
  void* lib = open_cublas();
  CublasApi api{};
  // The _v2 names are what cublas_v2.h's macros make of cublasCreate and the others.
  resolve(lib, "cublasCreate_v2", api.create);
  resolve(lib, "cublasDestroy_v2", api.destroy);
  resolve(lib, "cublasSetStream_v2", api.set_stream);
  resolve(lib, "cublasSetMathMode", api.set_math_mode);
  resolve(lib, "cublasGemmEx", api.gemm_ex);
  resolve(lib, "cublasGetStatusName", api.status_name);
  resolve(lib, "cublasGetStatusString", api.status_string);
  return api;
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load_cublas();  // a throw leaves it unset: the next call retries
  return api;
}

}  // namespace dp::cuda
