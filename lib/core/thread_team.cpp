#include "core/thread_team.h"

#include <algorithm>

namespace dp {

ThreadTeam::ThreadTeam(int count, const std::function<void()>& work) {
  threads_.reserve(size_t(std::max(count, 0)));
  try {
    for (int i = 0; i < count; ++i) threads_.emplace_back(work);
  } catch (const std::system_error& e) {  // EAGAIN: the limit on tasks
    refusal_ = e.code();
  } catch (...) {
    join();  // none may outlive the data its work reads
    throw;
  }
}

void ThreadTeam::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

}  // namespace dp
