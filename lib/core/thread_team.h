// Threads started where the system may refuse some (its limit on tasks, `ulimit -u` or a pids
// cgroup; memory for a stack): the caller decides what a refusal means (pack's decoding goes
// on with the threads it has, the CPU team's probe names the option).
#pragma once

#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace dp {

// Up to `count` threads, each running `work`, started by the constructor; where the system
// refuses one (std::system_error), those started run on and refused() says why. Any other
// failure to start one (memory for its state) joins those started and propagates. join() (the
// destructor too) waits for them all, so none outlives the data its work reads: declare a team
// after that data. `work` must not throw (a thread's exception ends the process).
class ThreadTeam {
 public:
  ThreadTeam(int count, const std::function<void()>& work);
  ~ThreadTeam() { join(); }
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  size_t started() const { return threads_.size(); }
  std::string refused() const { return refusal_ ? refusal_.message() : ""; }  // "": all started
  void join();

 private:
  std::vector<std::thread> threads_;
  std::error_code refusal_;  // the system's reason for the first thread it did not start
};

}  // namespace dp
