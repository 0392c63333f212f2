// The run directory output/<run>/ that rank 0 writes: metrics.h5, checkpoint.h5 (and, with
// --keep-checkpoints, checkpoint-e*-s*.h5), eval.h5. Refuses to reuse a directory that already
// holds a run unless told to overwrite it or to continue it (--resume), so a mistyped command
// never destroys finished work.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/unique_fd.h"

namespace dp {

// The names of a run directory's outputs: the run's metrics, its latest checkpoint (a link to
// the newest named checkpoint, or the one file), and `dptrain eval`'s file (written beside the
// checkpoint it evaluates unless --output says otherwise), which --overwrite replaces.
inline constexpr const char* kMetricsFileName = "metrics.h5";
inline constexpr const char* kCheckpointFileName = "checkpoint.h5";
inline constexpr const char* kEvalFileName = "eval.h5";

// An exclusive flock on <run directory>/.dptrain.lock, held for the object's life: one job at
// a time writes a run directory (two jobs continuing one run would replace each other's
// metrics.h5 and checkpoints). The kernel drops it when the process ends, however it ends.
class RunLock {
 public:
  explicit RunLock(const std::string& directory);
  // The lock file of `directory`.
  static std::string file_in(const std::string& directory);

 private:
  UniqueFd fd_;  // closing it releases the lock
};

// --overwrite's replaced run (its metrics.h5, eval.h5 and checkpoints) moved into the run
// directory's .replaced/ folder, where neither checkpoint pruning nor --resume auto sees it,
// until the new run has done its first step. discard() then deletes it; destroyed before that
// (the new run failed first: a batch that does not fit in memory, a batch norm with one value
// per channel), it comes back over the new run's metrics.h5. A job killed in between (also by
// MPI_Abort, when another rank failed) leaves it there: the next --overwrite puts it back
// first where no checkpoint has been written beside it since, and deletes it otherwise.
class ReplacedRun {
 public:
  // Moves the run's files of `run_dir` into .replaced/; where one cannot move, those moved
  // come back and an IoError names it.
  explicit ReplacedRun(std::string run_dir);
  ~ReplacedRun();
  ReplacedRun(const ReplacedRun&) = delete;
  ReplacedRun& operator=(const ReplacedRun&) = delete;
  static std::string folder_in(const std::string& run_dir);
  void discard();

 private:
  void move_back() noexcept;

  std::string run_dir_, folder_;
  std::vector<std::string> names_;  // moved aside
  bool discarded_ = false;
};

class RunDirectory {
 public:
  enum class Existing { refuse, overwrite, resume };
  // Creates <output_dir>/<run_name> and takes its RunLock (rank 0 only creates; others just
  // compute paths). A UsageError when another job holds the lock.
  RunDirectory(const std::string& output_dir, const std::string& run_name, Existing existing,
               bool create);
  // A directory this object created and nothing was written to (the run was refused or failed
  // before its metrics.h5) is removed, so a refused run leaves no empty run behind.
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;
  const std::string& path() const { return path_; }
  std::string metrics() const { return path_ + "/" + kMetricsFileName; }
  std::string checkpoint() const { return path_ + "/" + kCheckpointFileName; }
  std::string eval() const { return path_ + "/" + kEvalFileName; }
  // Renames `file` of this directory, NAME.h5, to NAME.WHY-YYYYmmdd-HHMMSS[-N].h5 (`why`:
  // "superseded" or "corrupted"; UTC; a free name) and returns that path; throws IoError naming
  // it when it cannot.
  std::string set_aside(const std::string& file, const char* why = "superseded") const;
  // metrics.h5 set aside: a run that starts again in this directory (--resume auto without a
  // checkpoint) keeps the history it would otherwise overwrite.
  std::string set_metrics_aside() const { return set_aside(metrics()); }
  // --overwrite, as the new run's metrics.h5 is about to be created: moves the replaced run's
  // metrics.h5, eval.h5 and checkpoints (what was set aside as *.superseded-*.h5 or
  // *.corrupted-*.h5 stays) into .replaced/ (ReplacedRun), so none is taken for the new run's
  // (pruned as newer, resumed from). Throws IoError naming a file it cannot move.
  std::unique_ptr<ReplacedRun> set_replaced_run_aside() const;

 private:
  std::string path_;
  bool created_ = false;  // the directory did not exist before
  std::unique_ptr<RunLock> lock_;
};

// "<arch>-<dataset>-slurm<job id>" where `slurm_job` is given, else
// "<arch>-<dataset>-YYYYmmdd-HHMMSS" (UTC); one plain folder name whatever the dataset's name.
std::string default_run_name(const std::string& arch, const std::string& dataset,
                             const std::string& slurm_job = "");

}  // namespace dp
