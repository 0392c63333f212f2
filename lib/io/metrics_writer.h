// metrics.h5, written by rank 0: the run's configuration and build info as attributes, one
// row per epoch appended to extendible datasets under /history and flushed at once (a crash
// keeps every finished epoch), one row per training step under /steps, and the final
// evaluation under /final. A resumed run reopens the file and continues it. Layout in README.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/evaluation_result.h"

namespace dp {

namespace h5 {
class File;
}

// metrics.h5's root `format` and `format_version` attributes.
inline constexpr const char* kMetricsFileFormat = "dptrain-metrics";
inline constexpr int64_t kMetricsFormatVersion = 1;

// One epoch's row. Field names become dataset names under /history.
struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  int64_t steps = 0;
  double lr = 0;      // learning rate at the end of the epoch
  double train_loss = 0, train_acc = 0;
  double val_loss = 0, val_acc = 0;  // NaN when not evaluated this epoch
  double epoch_time = 0, images_per_sec = 0;
  double time_data = 0, time_forward = 0, time_backward = 0, time_comm = 0, time_optimizer = 0;
  double time_eval = 0;
  // time_comm is the whole time gradient allreduces were in flight or waited for; of it,
  // time_comm_hidden overlapped backward (so it is also inside time_backward), and
  // time_comm - time_comm_hidden is the time steps were blocked on communication.
  double time_comm_hidden = 0;
  // Mean step time of the slowest and the fastest rank, counting each rank's own work (data,
  // forward, backward, optimizer) but not the wait for the others, so a straggler shows.
  double step_time_max = 0, step_time_min = 0;
  int64_t skipped_steps = 0;
};

// One training step's row under /steps: the loss and accuracy of the global batch (the mean
// over ranks) and the learning rate the update used.
struct StepRecord {
  int64_t step = 0;   // global, 1-based
  int64_t epoch = 0;  // 1-based
  double loss = 0, accuracy = 0, lr = 0;
};

class MetricsWriter {
 public:
  // Creates `path` (truncating), writes /config attributes (every option, as strings) and
  // /build attributes. `steps_per_epoch` is this job's, written with its /steps rows as /steps'
  // steps_per_epoch attribute: the length of a last epoch the rows end inside (a stop, a run in
  // progress), for a reader placing them (dptrain-report's learning-rate curve); 0 writes none.
  MetricsWriter(const std::string& path, const std::map<std::string, std::string>& config,
                const std::map<std::string, std::string>& build_info, int64_t steps_per_epoch);
  // Reopens an existing metrics.h5 to continue a resumed run: keeps the /history rows of the
  // first `epochs` epochs and the /steps rows of the first `steps` steps, drops the rest (they
  // were written after the checkpoint the run resumes from, and will be written again) and any
  // /final, and records the resume as /resumes/<n> with `resume_info` as attributes and the
  // resumed job's effective options `config` (as /config holds the first job's: another world
  // size, epoch count or thread count may continue a run) as /resumes/<n>/config; the resumed
  // job's `steps_per_epoch` as the constructor's. In memory: the caller publishes it (after
  // setting aside what the resume supersedes), or the next change does. Throws DataError when
  // the file is not a dptrain metrics file.
  static std::unique_ptr<MetricsWriter> reopen(
      const std::string& path, int64_t epochs, int64_t steps, int64_t steps_per_epoch,
      const std::map<std::string, std::string>& resume_info,
      const std::map<std::string, std::string>& config = {});
  // The values the last job to write the metrics file `path` recorded (its last
  // /resumes/<n>/config, else /config) of the options `names` has keys for (its values are not
  // read: a job's own effective options serve); empty where the file
  // cannot be read (reopen then says why).
  static std::map<std::string, std::string> last_job_options(
      const std::string& path, const std::map<std::string, std::string>& names);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Steps are buffered in memory and written with the next append_epoch() or flush_steps().
  void add_step(const StepRecord& record);
  void flush_steps();
  // Writes the buffered steps too, so /steps and /history always end at the same point.
  void append_epoch(const EpochRecord& record);
  // `tta`: the test-time augmentation level it was evaluated with (a resumed job's --tta may
  // differ from the epochs' evaluations before it).
  void write_final(const EvaluationResult& result, const std::vector<std::string>& class_names,
                   int64_t tta);
  const std::string& path() const { return path_; }

  // The file lives in memory; each change ends by replacing the file on disk whole
  // (replace_durably), so a full disk or a killed rank 0 leaves the last published file.
  void publish();

 private:
  MetricsWriter(const std::string& path, int64_t steps_per_epoch);  // reopen
  std::string path_;
  std::unique_ptr<h5::File> file_;
  std::vector<StepRecord> pending_steps_;
  const int64_t steps_per_epoch_;  // 0: not recorded
};

}  // namespace dp
