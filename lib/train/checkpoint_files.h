// The checkpoints of a run directory and how they are named and found: checkpoint.h5 is
// always the newest; with --keep-checkpoints K > 1 the K newest are also kept as
// checkpoint-eEEEE-sSSSSSS.h5 (E finished epochs, S optimizer steps done; "-vN" added where an
// older checkpoint has the name), older ones deleted.
// `--resume auto` takes the newest one that opens, reads as a checkpoint and passes its checksums.
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "io/checkpoint.h"
#include "train/checkpoint_keys.h"

namespace dp {

// Where a checkpoint stands in its run: (finished epochs, steps into the next, optimizer
// steps), the later the greater. Epochs first: a stop after an epoch's last step and that
// epoch's end share the step, and the end is the later; and a resume with fewer steps per
// epoch (another world size under --drop-last) counts its steps from fewer than the
// checkpoints before it had.
using CheckpointPosition = std::tuple<int64_t, int64_t, int64_t>;

struct CheckpointFile {
  std::string path;
  CheckpointMeta meta;
  int64_t global_step() const;
  CheckpointPosition position() const {
    return {meta.int_or(checkpoint_keys::kEpoch, 0), meta.int_or(checkpoint_keys::kStepInEpoch, 0),
            global_step()};
  }
};

// "checkpoint-e0003-s001234.h5"; version N > 1 adds "-vN".
std::string named_checkpoint_file(int64_t epochs_done, int64_t global_step, int64_t version = 1);

// The path in `dir` for a new named checkpoint at `position`: a version of its name whose file
// is at the same position (the same point of the run written again, as after a resume that
// skipped a corrupted checkpoint), else the lowest version whose file is missing or is a file
// that does not read as a checkpoint: those it replaces. A resume on fewer steps per epoch (another
// world size under --drop-last) counts its steps from fewer, so a checkpoint from before it, at
// another position, can hold the plain name; writing over it would lose that checkpoint.
std::string checkpoint_file_for(const std::string& dir, CheckpointPosition position);

// Every readable checkpoint in `dir`, newest (the greatest position) first. A file named as a
// checkpoint that does not read as one is skipped with a warning and its path added to `unreadable`
// (if given); "*.tmp" files (a save that did not finish) are never considered.
std::vector<CheckpointFile> find_checkpoints(const std::string& dir,
                                             std::vector<std::string>* unreadable = nullptr);

// The checkpoints of `dir` past the position of one a run resumes from: what an explicit
// --resume of an older checkpoint leaves behind. One that does not open is placed by its
// name's finished epochs and steps, a version above 1 past the plain name's (checkpoint.h5
// that does not open counts as past it).
std::vector<std::string> checkpoints_after(const std::string& dir, CheckpointPosition resumed);

// Deletes the named checkpoints of `dir` beyond the `keep` newest; one that does not open
// (it cannot be resumed from) counts as older than those that do.
void prune_named_checkpoints(const std::string& dir, int keep);

// The file names of every checkpoint of `dir` (checkpoint.h5 and the named ones, in no order):
// a run that replaces the one there must not prune its own new checkpoint as older than
// those, nor resume from them. Throws IoError where `dir` cannot be listed.
std::vector<std::string> checkpoint_names(const std::string& dir);

// The newest checkpoint of `dir` whose every byte passes verification (io/file_verify.h), or
// "" when there is none. A corrupted one (or one that does not open) is skipped with a warning
// naming it and the problem, and added to `skipped` (if given); when every checkpoint is, a
// DataError says so (no silent start from scratch).
std::string newest_verified_checkpoint(const std::string& dir,
                                       std::vector<std::string>* skipped = nullptr);

// --resume: none (a fresh run), auto (the run directory's newest checkpoint; fresh where there
// is none yet) or a checkpoint file.
struct ResumeRequest {
  enum class Kind { none, automatic, file };
  Kind kind = Kind::none;
  std::string file;  // Kind::file
};

// "none", "auto" or a path; throws UsageError naming --resume for an empty value or a path that
// is not a file. Option parsing calls it, before the run directory exists (a typo leaves
// nothing behind).
ResumeRequest parse_resume_option(const std::string& text);

// The checkpoint a run in `run_dir` continues from, or "" to start from scratch (none; auto with
// no checkpoint yet); auto's skipped checkpoints go into `skipped` (if given). Throws
// UsageError when the file has gone since the options were read.
std::string resolve_resume(const ResumeRequest& request, const std::string& run_dir,
                           std::vector<std::string>* skipped = nullptr);

}  // namespace dp
