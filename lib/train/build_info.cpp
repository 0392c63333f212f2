#include "train/build_info.h"

#include <H5public.h>
#include <mpi.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <fmt/format.h>

namespace dp {

std::map<std::string, std::string> build_info() {
  std::map<std::string, std::string> info;
  info["dptrain_version"] = DPTRAIN_VERSION;
#ifdef DPTRAIN_GIT_COMMIT
  info["git_commit"] = DPTRAIN_GIT_COMMIT;
#endif
  info["compiler"] = fmt::format("{} {}", "gcc", __VERSION__);
  info["build_type"] = DPTRAIN_BUILD_TYPE;
  const dnnl_version_t* v = dnnl_version();
  info["onednn"] = fmt::format("{}.{}.{}", v->major, v->minor, v->patch);
  info["hdf5"] = fmt::format("{}.{}.{}", H5_VERS_MAJOR, H5_VERS_MINOR, H5_VERS_RELEASE);
  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(mpi_version, &length);
  std::string mpi(mpi_version, length);
  info["mpi"] = mpi.substr(0, mpi.find_first_of(",\n"));
#ifdef DPTRAIN_WITH_CUDA
  info["cuda_built"] = "yes";
#else
  info["cuda_built"] = "no";
#endif
  return info;
}

}  // namespace dp
