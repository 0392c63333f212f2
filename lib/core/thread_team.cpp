#include "core/thread_team.h"

#include <algorithm>
#include <exception>

namespace dp {

ThreadTeam::ThreadTeam(int count, const std::function<void()>& work) {
  threads_.reserve(size_t(std::max(count, 0)));
  try {
    for (int i = 0; i < count; ++i) threads_.emplace_back(work);
  } catch (const std::exception& e) {  // std::system_error (EAGAIN), bad_alloc for its state
    refused_ = e.what();
  }
}

void ThreadTeam::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

}  // namespace dp
