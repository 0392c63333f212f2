// A checkpoint file killed mid-write never replaces the last good one: a child process writes
// checkpoints back to back (each one's tensor filled with its own sequence number) and is
// SIGKILLed after its first checkpoint is in place, at a random moment or just as a write
// reaches the disk; after every kill, checkpoint.h5 must be a complete, loadable checkpoint
// whose tensor is uniformly the number its attributes say, never a mix or a truncated file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "io/checkpoint.h"
#include "../io/temp_dir.h"

namespace dp {
namespace {

constexpr int64_t kValues = 8 << 20;  // 32 MiB: a write takes long enough to be caught mid-way

// Writes checkpoints back to back; after the first one is in place, writes a byte to
// `ready_fd` so the parent kills only once a good checkpoint exists.
[[noreturn]] void write_checkpoints_forever(const std::string& path, int ready_fd) {
  std::vector<float> tensor(kValues);
  for (int64_t n = 1;; ++n) {
    std::fill(tensor.begin(), tensor.end(), static_cast<float>(n));
    CheckpointMeta meta;
    meta.ints["sequence"] = n;
    save_checkpoint(path, {{{"w", {kValues}, tensor.data()}}, {}, {}, {}, {}}, meta);
    if (n == 1 && write(ready_fd, "1", 1) != 1) _exit(4);
  }
}

// The writer builds each checkpoint in memory and has a .tmp file on disk only while it writes
// and syncs it; where that is quick (a RAM-backed CI disk) a random moment seldom falls inside,
// so every other kill waits for the .tmp file to appear (or gives up after 5 s).
void wait_until_a_write_is_on_disk(const std::string& tmp) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!std::filesystem::exists(tmp) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
}

TEST(CheckpointKill, KilledWriterNeverLeavesABadCheckpoint) {
  testing::TempDir dir;
  const std::string path = dir.file("checkpoint.h5");
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_ms(0, 300);
  constexpr int kTrials = 12;
  int mid_write = 0;
  std::vector<float> back(kValues);
  for (int trial = 0; trial < kTrials; ++trial) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(ready[0]);
      try {
        write_checkpoints_forever(path, ready[1]);
      } catch (...) {
        _exit(3);
      }
    }
    close(ready[1]);
    char byte = 0;
    ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the writer failed before its first checkpoint";
    close(ready[0]);
    if (trial % 2 == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    else
      wait_until_a_write_is_on_disk(path + ".tmp");
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself (status " << status << ")";
    if (std::filesystem::exists(path + ".tmp")) ++mid_write;
    // A good checkpoint existed before the kill, so one must exist after it: the last
    // complete one, whole, its data and attributes from the same save.
    CheckpointMeta meta;
    ASSERT_NO_THROW(meta = load_checkpoint(path, {{{"w", {kValues}, back.data()}}, {}, {}, {}, {}}))
        << "trial " << trial;
    const int64_t sequence = meta.ints.at("sequence");
    EXPECT_GE(sequence, 1);
    const auto odd = std::find_if(back.begin(), back.end(),
                                  [&](float v) { return v != static_cast<float>(sequence); });
    EXPECT_EQ(odd, back.end()) << "checkpoint " << sequence << " holds another checkpoint's data";
  }
  // The test means something only if kills did land inside writes.
  EXPECT_GE(mid_write, 1) << "no kill landed mid-write";
  std::printf("%d of %d kills landed mid-write; checkpoint.h5 was the last complete one every time\n",
              mid_write, kTrials);
}

}  // namespace
}  // namespace dp
