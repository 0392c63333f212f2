// `dptrain verify FILE...`: checks dptrain files end to end (every metadata block, attribute
// and dataset read through its checksum, lib/io/file_verify.h) and prints one line per file:
//   FILE: ok, verified (N datasets checksummed)
//   FILE: ok, unverified: M of N datasets carry no checksum, and/or its metadata (superblock
//         version 0) carries none (an earlier dptrain's, or another program's file)
//   FILE: corrupted at dataset /params/fc.weight: <reason>
//   FILE: cannot be verified: <reason>        (missing, not HDF5, unreadable before any object,
//                                             or empty: no datasets, no attributes)
// Exit 0 when every file is ok (verified or not), 3 when any is corrupted or unreadable.
#include <boost/program_options.hpp>
#include <iostream>

#include "app/commands.h"
#include "app/parse_options.h"
#include "core/error.h"
#include "io/file_verify.h"
#include "io/hdf5.h"

namespace po = boost::program_options;

namespace dp {

namespace {

// The reason without its leading "<file>:<object>: " or "<file>: ", which the line names.
std::string reason_without_location(const std::string& path, const FileVerification& v) {
  for (const std::string& prefix : {path + ":" + v.failed_object + ": ", path + ": "})
    if (v.problem.rfind(prefix, 0) == 0) return v.problem.substr(prefix.size());
  return v.problem;
}

std::string verification_line(const std::string& path, const FileVerification& v) {
  if (v.verified())
    return fmt::format("{}: ok, verified ({} datasets checksummed)", path, v.datasets);
  if (v.ok)
    return fmt::format(
        "{}: ok, unverified: {} (written by an earlier dptrain or another program; write it "
        "again with dptrain to add them)",
        path, unverified_parts(v));
  const std::string reason = reason_without_location(path, v);
  if (v.failed_object.empty())
    return fmt::format("{}: {}: {}",
                       path, h5::is_corruption_message(reason) ? "corrupted" : "cannot be verified",
                       reason);
  return fmt::format("{}: corrupted at {}{}: {}", path, v.failed_at_dataset ? "dataset " : "",
                     v.failed_object, reason);
}

}  // namespace

int run_verify(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  po::options_description desc("dptrain verify options");
  desc.add_options()("help,h", "print this help")(
      "file", po::value(&paths), "packed dataset, checkpoint, metrics or eval file");
  po::positional_options_description positional;
  positional.add("file", -1);
  if (!parse_options(args, desc,
                     "usage: dptrain verify FILE...\n"
                     "Reads every byte of each file through its checksums; one line per file.\n"
                     "Exit 0 when every file is ok, 3 when any is corrupted or unreadable.",
                     positional))
    return 0;
  if (paths.empty()) throw UsageError("verify: no file given (usage: dptrain verify FILE...)");
  bool all_ok = true;
  for (const auto& path : paths) {
    const FileVerification v = verify_file(path);
    all_ok = all_ok && v.ok;
    std::cout << verification_line(path, v) << std::endl;
  }
  return static_cast<int>(all_ok ? ExitCode::ok : ExitCode::data);
}

}  // namespace dp
