// What built and runs this binary (versions of the compiler and libraries, backends compiled
// in): build_info() is recorded in metrics.h5 so a result can be traced to its build, and
// `dptrain --version` prints it together with build_details().
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dp {

// metrics.h5's /build attributes: dptrain_version, git_commit (when known), compiler,
// build_type, onednn, hdf5, mpi (the library version string's first field), cuda_built.
std::map<std::string, std::string> build_info();

// (name, version) pairs in display order.
using VersionList = std::vector<std::pair<std::string, std::string>>;

struct BuildDetails {
  bool cuda_built = false;
  VersionList cuda_stack;  // CUDA runtime, cuDNN, NCCL: the headers built against; empty
                           // without the CUDA backend
  VersionList libraries;   // oneDNN, HDF5, MPI (its whole library version string), Boost,
                           // fmt, OpenSSL
};
BuildDetails build_details();

}  // namespace dp
