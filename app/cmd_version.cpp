// dptrain --version (-V): the version, the backends this build has and the libraries it was
// built with, all from train/build_info (the facts metrics.h5 records, plus the rest).
// Starts no MPI: it must work on a login node outside any launcher.
#include <algorithm>
#include <iostream>

#include "app/commands.h"
#include "core/error.h"
#include "train/build_info.h"

namespace dp {
namespace {

// "CUDA runtime 13.0, cuDNN 9.1.0, NCCL 2.21.5"
std::string joined(const VersionList& versions) {
  std::string out;
  for (const auto& [name, version] : versions)
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", name, version);
  return out;
}

// One "  name  version" line each, versions in one column; a version of several lines (MPI's
// string may have them) keeps that column on its continuation lines.
std::string aligned(const VersionList& versions) {
  size_t width = 0;
  for (const auto& entry : versions) width = std::max(width, entry.first.size());
  std::string out;
  for (const auto& [name, version] : versions) {
    std::string indented = version;
    for (size_t at = indented.find('\n'); at != std::string::npos; at = indented.find('\n', at + 1))
      indented.insert(at + 1, std::string(width + 4, ' '));
    out += fmt::format("  {:<{}}  {}\n", name, width, indented);
  }
  return out;
}

}  // namespace

int run_version(const std::vector<std::string>& args) {
  if (!args.empty())
    throw UsageError(fmt::format("--version: unexpected argument '{}'", args.front()));
  const std::map<std::string, std::string> info = build_info();
  const BuildDetails details = build_details();
  const std::string onednn = info.at("onednn");
  std::string out = fmt::format("dptrain {}\n", info.at("dptrain_version"));
  if (info.count("git_commit")) out += fmt::format("git commit {}\n", info.at("git_commit"));
  out += fmt::format("built with {}, {} build\n", info.at("compiler"), info.at("build_type"));
  out += "backends:\n";
  out += fmt::format("  CPU   yes (oneDNN {})\n", onednn);
  out += details.cuda_built
             ? fmt::format("  CUDA  yes (built against {})\n", joined(details.cuda_stack))
             : "  CUDA  no (built without the CUDA toolkit, cuDNN and NCCL)\n";
  out += "libraries:\n" + aligned(details.libraries);
  std::cout << out;
  return 0;
}

}  // namespace dp
