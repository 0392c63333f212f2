#include "train/build_info.h"

#include <H5public.h>
#include <fmt/format.h>
#include <mpi.h>

#include <boost/version.hpp>

#include "backend/cpu/onednn_version.h"
#include "comm/mpi_session.h"
#include "data/sha256.h"

#ifdef DPTRAIN_WITH_CUDA
#include <cuda_runtime_api.h>
#include <cudnn_version.h>
#include <nccl.h>
#endif

namespace dp {
namespace {

std::string hdf5_version() {
  return fmt::format("{}.{}.{}", H5_VERS_MAJOR, H5_VERS_MINOR, H5_VERS_RELEASE);
}

// The MPI library's version string as it gives it (may be called before MPI_Init, MPI 3.0).
std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  DP_MPI_CHECK(MPI_Get_library_version(text, &length));
  return std::string(text, length);
}

// The same without trailing line ends, spaces or NULs, for printing.
std::string mpi_library_version_trimmed() {
  std::string version = mpi_library_version();
  const size_t end = version.find_last_not_of(std::string("\n\r\t \0", 5));
  return end == std::string::npos ? "" : version.substr(0, end + 1);
}

std::string boost_version() {
  return fmt::format("{}.{}.{}", BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
                     BOOST_VERSION % 100);
}

std::string fmt_version() {
  return fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100);
}

#ifdef DPTRAIN_WITH_CUDA
VersionList cuda_stack_versions() {
  return {{"CUDA runtime", fmt::format("{}.{}", CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10)},
          {"cuDNN", fmt::format("{}.{}.{}", CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL)},
          {"NCCL", fmt::format("{}.{}.{}", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH)}};
}
#endif

}  // namespace

std::map<std::string, std::string> build_info() {
  std::map<std::string, std::string> info;
  info["dptrain_version"] = DPTRAIN_VERSION;
#ifdef DPTRAIN_GIT_COMMIT
  info["git_commit"] = DPTRAIN_GIT_COMMIT;
#endif
#if defined(__clang__)
  info["compiler"] = fmt::format("clang {}", __clang_version__);
#else
  info["compiler"] = fmt::format("gcc {}", __VERSION__);
#endif
  info["build_type"] = DPTRAIN_BUILD_TYPE;
  info["onednn"] = onednn_version();
  info["hdf5"] = hdf5_version();
  const std::string mpi = mpi_library_version();
  info["mpi"] = mpi.substr(0, mpi.find_first_of(",\n"));
#ifdef DPTRAIN_WITH_CUDA
  info["cuda_built"] = "yes";
#else
  info["cuda_built"] = "no";
#endif
  return info;
}

BuildDetails build_details() {
  BuildDetails details;
#ifdef DPTRAIN_WITH_CUDA
  details.cuda_built = true;
  details.cuda_stack = cuda_stack_versions();
#endif
  details.libraries = {{"oneDNN", onednn_version()},
                       {"HDF5", hdf5_version()},
                       {"MPI", mpi_library_version_trimmed()},
                       {"Boost", boost_version()},
                       {"fmt", fmt_version()},
                       {"OpenSSL", data::openssl_version()}};
  return details;
}

}  // namespace dp
