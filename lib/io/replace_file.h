#pragma once
// Replacing an output file so that a reader never sees it half written.
#include <functional>
#include <string>

namespace dp {

// Runs `write(tmp)` for tmp = "<output_file>.tmp" (creating the output's folder if missing),
// fsyncs tmp, and moves it over output_file with the replaced file's permissions
// (rename_into_place, durable_file.h). tmp is created exclusively
// first: when anything is there already (another process writing the same output, a leftover
// of a killed one, a link) this throws IoError naming it and touches nothing. On any failure
// the tmp file and the folders made for it are removed and an earlier output_file, if any, is
// left whole; the error propagates (a failed rename as IoError naming output_file). SIGINT,
// SIGTERM, SIGHUP or SIGPIPE meanwhile (those whose action is to end the process) remove tmp too,
// then end the process as they would have.
void write_then_rename(const std::string& output_file,
                       const std::function<void(const std::string& tmp)>& write);

// What a command that replaces its output by write_then_rename may replace: a missing path, or
// a regular file `is_ours` accepts (`ours` says which: "an eval file"). Throws UsageError
// "<option>: <path> ..." for a link (the rename would replace the link, not its target) or any
// other existing file.
struct ReplaceableOutput {
  std::string option;   // "option --output"
  std::string command;  // "eval"
  std::string ours;     // "an eval file"
  std::function<bool(const std::string& path)> is_ours;
};
void check_replaceable_output(const std::string& path, const ReplaceableOutput& rule);

// Throws write_then_rename's IoError where "<path>.tmp" exists: called by the process that will
// write `path`, before its work rather than after it.
void check_no_leftover_tmp(const std::string& path);

}  // namespace dp
