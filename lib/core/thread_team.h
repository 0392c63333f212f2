// Threads started where the system may refuse some (its limit on tasks, `ulimit -u` or a pids
// cgroup; memory for a stack): the caller decides what a refusal means (pack's decoding goes
// on with the threads it has, the CPU team's probe names the option).
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace dp {

// Up to `count` threads, each running `work`, started by the constructor; where one is
// refused, those started run on and refused() says why. join() (the destructor too) waits for
// them all, so none outlives the data its work reads: declare a team after that data. `work`
// must not throw (a thread's exception ends the process).
class ThreadTeam {
 public:
  ThreadTeam(int count, const std::function<void()>& work);
  ~ThreadTeam() { join(); }
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  size_t started() const { return threads_.size(); }
  const std::string& refused() const { return refused_; }  // empty when all started
  void join();

 private:
  std::vector<std::thread> threads_;
  std::string refused_;
};

}  // namespace dp
