// Checkpoint names, --resume auto's choice (newest readable, unreadable and .tmp files
// skipped), pruning to the newest K, what --overwrite deletes, one job at a time in a run
// directory, a run that wrote nothing leaving none, and the checkpoint policy's timing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "../io/temp_dir.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "train/checkpoint_files.h"
#include "train/checkpoint_policy.h"
#include "train/run_directory.h"

namespace dp {
namespace {

void write_checkpoint(const std::string& path, int64_t step, int64_t epochs_done = 0,
                      int64_t step_in_epoch = 0) {
  std::vector<float> w = {float(step)};
  CheckpointMeta meta;
  meta.ints["step"] = step;
  meta.ints["epoch"] = epochs_done;
  meta.ints["step_in_epoch"] = step_in_epoch;
  save_checkpoint(path, {{{"w", {1}, w.data()}}, {}, {}, {}, {}}, meta);
}

TEST(CheckpointFiles, NamesSortAsTheyShould) {
  EXPECT_EQ(named_checkpoint_file(3, 1234), "checkpoint-e0003-s001234.h5");
  EXPECT_EQ(named_checkpoint_file(12, 1234567), "checkpoint-e0012-s1234567.h5");
}

TEST(CheckpointFiles, AutoPicksTheNewestReadableCheckpoint) {
  testing::TempDir dir;
  const ResumeRequest automatic = parse_resume_option("auto");
  EXPECT_EQ(automatic.kind, ResumeRequest::Kind::automatic);
  EXPECT_EQ(resolve_resume(automatic, dir.path().string()), "");
  EXPECT_EQ(resolve_resume(automatic, dir.file("missing-dir")), "");
  write_checkpoint(dir.file(named_checkpoint_file(1, 10)), 10);
  write_checkpoint(dir.file(named_checkpoint_file(2, 20)), 20);
  write_checkpoint(dir.file("checkpoint.h5"), 20);
  // Newer by name, but not a checkpoint (a file cut short by a full disk, say): skipped.
  std::ofstream(dir.file(named_checkpoint_file(3, 30))) << "not hdf5";
  // An unfinished save: never considered, even though it would be the newest.
  write_checkpoint(dir.file(named_checkpoint_file(4, 40)) + ".tmp", 40);
  std::ofstream(dir.file("notes.txt")) << "other files are ignored";

  auto found = find_checkpoints(dir.path().string());
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].global_step(), 20);
  EXPECT_EQ(found[2].path, dir.file(named_checkpoint_file(1, 10)));
  const std::string chosen = resolve_resume(automatic, dir.path().string());
  EXPECT_EQ(read_checkpoint_meta(chosen).ints.at("step"), 20);
  EXPECT_EQ(resolve_resume(parse_resume_option("none"), dir.path().string()), "");
  const ResumeRequest file = parse_resume_option(dir.file("checkpoint.h5"));
  EXPECT_EQ(resolve_resume(file, "elsewhere"), dir.file("checkpoint.h5"));
  EXPECT_THROW(parse_resume_option(dir.file("nope.h5")), UsageError);
  EXPECT_THROW(parse_resume_option(""), UsageError);
  std::filesystem::remove(dir.file("checkpoint.h5"));  // gone since the options were read
  EXPECT_THROW(resolve_resume(file, dir.path().string()), UsageError);
  // A folder where checkpoint.h5 goes: the run could not save one; refused before it starts.
  std::filesystem::create_directory(dir.file("checkpoint.h5"));
  EXPECT_THROW(resolve_resume(automatic, dir.path().string()), UsageError);
}

// What --resume auto skipped, for the run to set aside: a corrupted checkpoint at the resumed
// one's position (checkpoint.h5 a copy, not a link, where the file system has no hard links;
// the named one sorts first), and one that does not open, older or not.
TEST(CheckpointFiles, AutoListsEveryCheckpointItSkipped) {
  testing::TempDir dir;
  const std::string named = dir.file(named_checkpoint_file(2, 20));
  write_checkpoint(named, 20, 2);
  write_checkpoint(dir.file("checkpoint.h5"), 20, 2);
  write_checkpoint(dir.file(named_checkpoint_file(1, 10)), 10, 1);
  std::ofstream(dir.file(named_checkpoint_file(0, 5))) << "cut short";
  // The weight 20.0f (little-endian 00 00 a0 41) flipped: the checksum fails, the meta reads.
  std::ifstream in(named, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const size_t at = bytes.find(std::string("\x00\x00\xa0\x41", 4));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] ^= 0x01;
  std::ofstream(named, std::ios::binary) << bytes;
  std::vector<std::string> skipped;
  EXPECT_EQ(resolve_resume(parse_resume_option("auto"), dir.path().string(), &skipped),
            dir.file("checkpoint.h5"));
  std::sort(skipped.begin(), skipped.end());
  EXPECT_EQ(skipped, (std::vector<std::string>{dir.file(named_checkpoint_file(0, 5)), named}));
}

// What an explicit --resume of an older checkpoint sets aside: every checkpoint past its
// position, one that does not open placed by its name (checkpoint.h5 that does not open, too).
TEST(CheckpointFiles, AfterAPositionComeTheNewerOnesReadableOrNot) {
  testing::TempDir dir;
  write_checkpoint(dir.file(named_checkpoint_file(1, 10)), 10, 1);
  write_checkpoint(dir.file(named_checkpoint_file(2, 20)), 20, 2);
  std::ofstream(dir.file(named_checkpoint_file(0, 5))) << "cut short";
  std::ofstream(dir.file(named_checkpoint_file(3, 30))) << "cut short";
  std::ofstream(dir.file("checkpoint.h5")) << "cut short";
  std::vector<std::string> after = checkpoints_after(dir.path().string(), {1, 0, 10});
  std::sort(after.begin(), after.end());
  EXPECT_EQ(after, (std::vector<std::string>{dir.file(named_checkpoint_file(2, 20)),
                                             dir.file(named_checkpoint_file(3, 30)),
                                             dir.file("checkpoint.h5")}));
}

TEST(CheckpointFiles, PruneKeepsTheNewestK) {
  testing::TempDir dir;
  for (int64_t step : {5, 10, 15, 20}) write_checkpoint(dir.file(named_checkpoint_file(0, step)), step);
  write_checkpoint(dir.file("checkpoint.h5"), 20);
  prune_named_checkpoints(dir.path().string(), 2);
  EXPECT_FALSE(std::filesystem::exists(dir.file(named_checkpoint_file(0, 5))));
  EXPECT_FALSE(std::filesystem::exists(dir.file(named_checkpoint_file(0, 10))));
  EXPECT_TRUE(std::filesystem::exists(dir.file(named_checkpoint_file(0, 15))));
  EXPECT_TRUE(std::filesystem::exists(dir.file(named_checkpoint_file(0, 20))));
  EXPECT_TRUE(std::filesystem::exists(dir.file("checkpoint.h5")));
}

// A stop after epoch 1's last step (7) and epoch 1's end share step 7: the end is the newer,
// chosen by --resume auto and kept by pruning, whatever the names' order.
TEST(CheckpointFiles, AtOneStepTheEpochsEndIsNewerThanItsLastStep) {
  testing::TempDir dir;
  write_checkpoint(dir.file(named_checkpoint_file(0, 4)), 4, 0, 4);
  write_checkpoint(dir.file(named_checkpoint_file(0, 7)), 7, 0, 7);
  write_checkpoint(dir.file(named_checkpoint_file(1, 7)), 7, 1);
  const auto found = find_checkpoints(dir.path().string());
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].path, dir.file(named_checkpoint_file(1, 7)));
  prune_named_checkpoints(dir.path().string(), 1);
  EXPECT_TRUE(std::filesystem::exists(dir.file(named_checkpoint_file(1, 7))));
  EXPECT_FALSE(std::filesystem::exists(dir.file(named_checkpoint_file(0, 7))));
  EXPECT_FALSE(std::filesystem::exists(dir.file(named_checkpoint_file(0, 4))));
}

// A run stopped at epoch 3's end on ranks taking 17 steps an epoch (step 51), resumed on ranks
// taking 16 under --drop-last: its checkpoint one step into epoch 4 is step 49, yet the newer,
// for --resume auto, pruning and an explicit --resume of the older one.
TEST(CheckpointFiles, AfterAResumeWithFewerStepsPerEpochTheNewCheckpointsAreTheNewer) {
  testing::TempDir dir;
  write_checkpoint(dir.file(named_checkpoint_file(2, 34)), 34, 2);
  write_checkpoint(dir.file(named_checkpoint_file(3, 51)), 51, 3);
  write_checkpoint(dir.file(named_checkpoint_file(3, 49)), 49, 3, 1);
  const auto found = find_checkpoints(dir.path().string());
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].path, dir.file(named_checkpoint_file(3, 49)));
  EXPECT_EQ(checkpoints_after(dir.path().string(), {3, 0, 51}),
            (std::vector<std::string>{dir.file(named_checkpoint_file(3, 49))}));
  prune_named_checkpoints(dir.path().string(), 2);
  EXPECT_TRUE(std::filesystem::exists(dir.file(named_checkpoint_file(3, 49))));
  EXPECT_TRUE(std::filesystem::exists(dir.file(named_checkpoint_file(3, 51))));
  EXPECT_FALSE(std::filesystem::exists(dir.file(named_checkpoint_file(2, 34))));
}

// The same resume can reach an older checkpoint's epochs and step count (epoch 3's end at step
// 51 on 17 steps an epoch; 2 steps into epoch 4 on 16): the new one takes the next free version,
// is found as the newer and kept by pruning; versions of one that does not open sort by number.
// The same position written again (a resume past a corrupted checkpoint redoes its steps), or a
// file that does not read as a checkpoint, is replaced under its own name.
TEST(CheckpointFiles, ANewCheckpointTakesTheNextVersionOfANameTakenElsewhere) {
  testing::TempDir dir;
  const std::string d = dir.path().string();
  EXPECT_EQ(named_checkpoint_file(3, 51, 2), "checkpoint-e0003-s000051-v2.h5");
  write_checkpoint(dir.file(named_checkpoint_file(3, 51)), 51, 3);
  EXPECT_EQ(checkpoint_file_for(d, {3, 0, 50}), dir.file(named_checkpoint_file(3, 50)));
  EXPECT_EQ(checkpoint_file_for(d, {3, 0, 51}), dir.file(named_checkpoint_file(3, 51)));
  const std::string second = checkpoint_file_for(d, {3, 2, 51});
  EXPECT_EQ(second, dir.file("checkpoint-e0003-s000051-v2.h5"));
  write_checkpoint(second, 51, 3, 2);
  EXPECT_EQ(checkpoint_file_for(d, {3, 2, 51}), second);
  EXPECT_EQ(checkpoint_file_for(d, {3, 1, 51}), dir.file("checkpoint-e0003-s000051-v3.h5"));
  std::ofstream(dir.file(named_checkpoint_file(4, 60))) << "cut short";
  EXPECT_EQ(checkpoint_file_for(d, {4, 0, 60}), dir.file(named_checkpoint_file(4, 60)));
  std::filesystem::remove(dir.file(named_checkpoint_file(4, 60)));
  std::filesystem::create_directory(dir.file(named_checkpoint_file(4, 60)));  // not replaced
  EXPECT_EQ(checkpoint_file_for(d, {4, 0, 60}), dir.file("checkpoint-e0004-s000060-v2.h5"));
  std::filesystem::remove(dir.file(named_checkpoint_file(4, 60)));
  const auto found = find_checkpoints(d);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].path, second);
  prune_named_checkpoints(d, 1);
  EXPECT_TRUE(std::filesystem::exists(second));
  EXPECT_FALSE(std::filesystem::exists(dir.file(named_checkpoint_file(3, 51))));
  // The plain name pruned, its position written again goes to the version that holds it.
  EXPECT_EQ(checkpoint_file_for(d, {3, 2, 51}), second);
  // An unreadable later version of the resumed checkpoint's name was written after it.
  std::ofstream(dir.file("checkpoint-e0003-s000051-v5.h5")) << "cut short";
  EXPECT_EQ(checkpoints_after(d, {3, 0, 51}),
            (std::vector<std::string>{dir.file("checkpoint-e0003-s000051-v2.h5"),
                                      dir.file("checkpoint-e0003-s000051-v5.h5")}));
  std::filesystem::remove(dir.file("checkpoint-e0003-s000051-v5.h5"));

  std::ofstream(dir.file("checkpoint-e0003-s000051-v3.h5")) << "cut short";
  std::ofstream(dir.file("checkpoint-e0003-s000051-v10.h5")) << "cut short";
  prune_named_checkpoints(d, 2);  // the readable one, then the newer of the two by name
  EXPECT_TRUE(std::filesystem::exists(second));
  EXPECT_TRUE(std::filesystem::exists(dir.file("checkpoint-e0003-s000051-v10.h5")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("checkpoint-e0003-s000051-v3.h5")));
}

// A name of the checkpoints' form whose numbers do not fit int64 was written by no run: it is
// no checkpoint to any of the run directory's functions (before, every one of them threw
// std::out_of_range, an internal error at the run's first checkpoint).
TEST(CheckpointFiles, ANameWithNumbersBeyondInt64IsNoCheckpoint) {
  testing::TempDir dir;
  const std::string d = dir.path().string();
  for (const char* name :
       {"checkpoint-e99999999999999999999-s000001.h5", "checkpoint-e0001-s99999999999999999999.h5",
        "checkpoint-e0001-s000010-v99999999999999999999.h5"})
    std::ofstream(dir.file(name)) << "not ours";
  write_checkpoint(dir.file(named_checkpoint_file(1, 10)), 10, 1);
  EXPECT_EQ(checkpoint_file_for(d, {1, 0, 10}), dir.file(named_checkpoint_file(1, 10)));
  EXPECT_EQ(find_checkpoints(d).size(), 1u);
  EXPECT_TRUE(checkpoints_after(d, {1, 0, 10}).empty());
  EXPECT_EQ(checkpoint_names(d), std::vector<std::string>{named_checkpoint_file(1, 10)});
  prune_named_checkpoints(d, 0);
  EXPECT_FALSE(std::filesystem::exists(dir.file(named_checkpoint_file(1, 10))));
  EXPECT_TRUE(std::filesystem::exists(dir.file("checkpoint-e0001-s99999999999999999999.h5")));
}

// A named checkpoint that does not open cannot be resumed from: pruning takes those first, the
// older by name before the newer.
TEST(CheckpointFiles, PruneTakesAnUnreadableCheckpointFirst) {
  testing::TempDir dir;
  write_checkpoint(dir.file(named_checkpoint_file(1, 10)), 10, 1);
  std::ofstream(dir.file(named_checkpoint_file(2, 20))) << "cut short";
  std::ofstream(dir.file(named_checkpoint_file(4, 40))) << "cut short";
  write_checkpoint(dir.file(named_checkpoint_file(3, 30)), 30, 3);
  prune_named_checkpoints(dir.path().string(), 3);
  EXPECT_TRUE(std::filesystem::exists(dir.file(named_checkpoint_file(1, 10))));
  EXPECT_FALSE(std::filesystem::exists(dir.file(named_checkpoint_file(2, 20))));
  EXPECT_TRUE(std::filesystem::exists(dir.file(named_checkpoint_file(3, 30))));
  EXPECT_TRUE(std::filesystem::exists(dir.file(named_checkpoint_file(4, 40))));
}

TEST(CheckpointFiles, PublishReplacesTheLatestAtomically) {
  testing::TempDir dir;
  write_checkpoint(dir.file("checkpoint.h5"), 1);
  write_checkpoint(dir.file(named_checkpoint_file(0, 2)), 2);
  publish_checkpoint_as(dir.file(named_checkpoint_file(0, 2)), dir.file("checkpoint.h5"));
  EXPECT_EQ(read_checkpoint_meta(dir.file("checkpoint.h5")).ints.at("step"), 2);
  EXPECT_FALSE(std::filesystem::exists(dir.file("checkpoint.h5.tmp")));
}

namespace {
std::string contents(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

// The replaced run's checkpoints would outrank the new run's: pruned as newer, resumed from.
// They wait in .replaced/ until the new run's first step, then go.
TEST(CheckpointFiles, OverwriteSetsTheReplacedRunsOutputsAsideUntilDiscarded) {
  namespace fs = std::filesystem;
  testing::TempDir out;
  const std::string run = out.file("run");
  fs::create_directories(run + "/.replaced");
  std::ofstream(run + "/.replaced/metrics.h5") << "a killed job's";
  const std::vector<std::string> replaced = {"metrics.h5", "eval.h5", "checkpoint.h5",
                                             named_checkpoint_file(3, 18)};
  const std::vector<std::string> kept = {"metrics.superseded-20261205-101010.h5", "notes.txt",
                                         named_checkpoint_file(4, 24) + ".tmp"};
  for (const auto& name : replaced) std::ofstream(run + "/" + name) << "old run";
  for (const auto& name : kept) std::ofstream(run + "/" + name) << "kept";

  EXPECT_THROW(RunDirectory(out.path().string(), "run", RunDirectory::Existing::refuse, true),
               UsageError);
  RunDirectory dir(out.path().string(), "run", RunDirectory::Existing::overwrite, true);
  for (const auto& name : replaced) EXPECT_TRUE(fs::exists(run + "/" + name)) << name;  // not yet
  std::unique_ptr<ReplacedRun> aside = dir.set_replaced_run_aside();
  EXPECT_TRUE(find_checkpoints(run).empty());
  for (const auto& name : replaced) {
    EXPECT_FALSE(fs::exists(run + "/" + name)) << name;
    EXPECT_EQ(contents(run + "/.replaced/" + name), "old run") << name;
  }
  for (const auto& name : kept) EXPECT_TRUE(fs::exists(run + "/" + name)) << name;
  aside->discard();
  EXPECT_FALSE(fs::exists(run + "/.replaced"));
  aside.reset();  // discarded: nothing comes back
  for (const auto& name : replaced) EXPECT_FALSE(fs::exists(run + "/" + name)) << name;
  for (const auto& name : kept) EXPECT_TRUE(fs::exists(run + "/" + name)) << name;
}

// A new run that fails before its first step (out of memory, a batch norm with one value per
// channel) leaves the run it was to replace as it found it.
TEST(CheckpointFiles, AReplacedRunComesBackWhereTheNewOneEndsBeforeItsFirstStep) {
  namespace fs = std::filesystem;
  testing::TempDir out;
  const std::string run = out.file("run");
  fs::create_directories(run);
  const std::vector<std::string> replaced = {"checkpoint.h5", named_checkpoint_file(3, 18)};
  for (const auto& name : replaced) std::ofstream(run + "/" + name) << "old run " << name;
  {
    RunDirectory dir(out.path().string(), "run", RunDirectory::Existing::overwrite, true);
    std::unique_ptr<ReplacedRun> aside = dir.set_replaced_run_aside();
    std::ofstream(run + "/metrics.h5") << "new run";  // all it writes before its first step
  }
  for (const auto& name : replaced) EXPECT_EQ(contents(run + "/" + name), "old run " + name);
  EXPECT_FALSE(fs::exists(run + "/metrics.h5"));  // the replaced run had none
  EXPECT_FALSE(fs::exists(run + "/.replaced"));
}

// A job killed before its first step (MPI_Abort after another rank failed) leaves the replaced
// run in .replaced/: the next --overwrite puts it back first, so it is not lost; where a later
// run has checkpointed beside it, it is the older one and goes.
TEST(CheckpointFiles, AReplacedRunAKilledJobLeftIsPutBackFirst) {
  namespace fs = std::filesystem;
  testing::TempDir out;
  const std::string run = out.file("run");
  fs::create_directories(run + "/.replaced");
  for (const char* name : {"metrics.h5", "checkpoint.h5"})
    std::ofstream(run + "/.replaced/" + name) << "old run";
  std::ofstream(run + "/metrics.h5") << "killed job";
  {
    RunDirectory dir(out.path().string(), "run", RunDirectory::Existing::overwrite, true);
    std::unique_ptr<ReplacedRun> aside = dir.set_replaced_run_aside();
    EXPECT_EQ(contents(run + "/.replaced/metrics.h5"), "old run");
    EXPECT_EQ(contents(run + "/.replaced/checkpoint.h5"), "old run");
    std::ofstream(run + "/metrics.h5") << "new run";
  }  // this one fails too
  EXPECT_EQ(contents(run + "/metrics.h5"), "old run");
  EXPECT_EQ(contents(run + "/checkpoint.h5"), "old run");

  fs::create_directories(run + "/.replaced");
  std::ofstream(run + "/.replaced/checkpoint.h5") << "older run";
  RunDirectory dir(out.path().string(), "run", RunDirectory::Existing::overwrite, true);
  std::unique_ptr<ReplacedRun> aside = dir.set_replaced_run_aside();
  EXPECT_EQ(contents(run + "/.replaced/checkpoint.h5"), "old run");
  aside->discard();
  EXPECT_FALSE(fs::exists(run + "/.replaced"));
}

// One job at a time writes a run directory: a second (a requeued or repeated job continuing
// the same run) is refused while the first holds it, and takes it once the first has ended.
TEST(CheckpointFiles, ASecondJobIsRefusedWhileTheFirstWritesTheRun) {
  testing::TempDir out;
  auto first = std::make_unique<RunDirectory>(out.path().string(), "run",
                                              RunDirectory::Existing::resume, true);
  const auto open_descriptors = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                         std::filesystem::directory_iterator());
  };
  const auto descriptors_before = open_descriptors();
  try {
    RunDirectory second(out.path().string(), "run", RunDirectory::Existing::resume, true);
    ADD_FAILURE() << "a second job took the run directory";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("another dptrain job is writing this run directory"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(open_descriptors(), descriptors_before) << "the refused lock's descriptor leaked";
  // The other ranks only compute its paths: no lock.
  RunDirectory reader(out.path().string(), "run", RunDirectory::Existing::resume, false);
  first.reset();
  EXPECT_NO_THROW(RunDirectory(out.path().string(), "run", RunDirectory::Existing::resume, true));
}

// A run refused or failed before it wrote anything leaves no (empty) run directory behind; one
// that wrote a file, or a directory that was there before, stays.
TEST(CheckpointFiles, ARunThatWroteNothingLeavesNoDirectory) {
  namespace fs = std::filesystem;
  testing::TempDir out;
  const std::string base = out.path().string();
  { RunDirectory refused(base, "refused", RunDirectory::Existing::refuse, true); }
  EXPECT_FALSE(fs::exists(base + "/refused"));
  {
    RunDirectory wrote(base, "wrote", RunDirectory::Existing::refuse, true);
    std::ofstream(wrote.metrics()) << "x";
  }
  EXPECT_TRUE(fs::exists(base + "/wrote/metrics.h5"));
  fs::create_directories(base + "/before");
  { RunDirectory before(base, "before", RunDirectory::Existing::resume, true); }
  EXPECT_TRUE(fs::exists(base + "/before"));
  { RunDirectory reader(base, "reader", RunDirectory::Existing::resume, false); }
  EXPECT_FALSE(fs::exists(base + "/reader"));
}

TEST(DefaultRunName, IsOnePlainFolderNameWhateverTheDatasetIsCalled) {
  // A dataset's name is whatever wrote its file: never a path out of --output-dir.
  const std::string name = default_run_name("resnet8", "../../x/y\nz \xc3\xa9.v1-a_b");
  EXPECT_EQ(name.rfind("resnet8-.._.._x_y_z___.v1-a_b-", 0), 0u) << name;
  EXPECT_EQ(name.find('/'), std::string::npos) << name;
  EXPECT_EQ(default_run_name("resnet8", "cifar10").rfind("resnet8-cifar10-", 0), 0u);
  // In a Slurm job (a run that continues itself): named for the job, which a requeue keeps.
  EXPECT_EQ(default_run_name("resnet8", "cifar10", "4242"), "resnet8-cifar10-slurm4242");
  EXPECT_EQ(default_run_name("resnet8", "cifar10", "../7"), "resnet8-cifar10-slurm.._7");
}

TEST(CheckpointPolicy, EpochsStepsAndMinutes) {
  CheckpointPolicy every_epoch({1, 0, 0}, 0.0);
  EXPECT_TRUE(every_epoch.epoch_due(1, false));
  EXPECT_FALSE(every_epoch.steps_due(100));
  EXPECT_FALSE(every_epoch.time_due(1e9));

  CheckpointPolicy end_only({0, 0, 0}, 0.0);
  EXPECT_FALSE(end_only.epoch_due(3, false));
  EXPECT_TRUE(end_only.epoch_due(3, true));

  CheckpointPolicy mixed({2, 50, 1.5}, 100.0);
  EXPECT_FALSE(mixed.epoch_due(1, false));
  EXPECT_TRUE(mixed.epoch_due(2, false));
  EXPECT_FALSE(mixed.steps_due(49));
  EXPECT_TRUE(mixed.steps_due(100));
  EXPECT_FALSE(mixed.time_due(100.0 + 89));
  EXPECT_TRUE(mixed.time_due(100.0 + 90));
  mixed.saved(190.0);
  EXPECT_FALSE(mixed.time_due(200.0));
}

}  // namespace
}  // namespace dp
