// Runs a helper program (`scontrol`) with a deadline: the caller may be inside a time window
// it does not control (a SIGTERM's KillWait), where a hung helper must not use up the window.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace dp {

// Runs argv[0], looked up in PATH, with argv[1...] and waits for it at most `timeout`; its
// stdout into `out` when given (otherwise stdout is inherited). Returns "" when it exits 0,
// otherwise why not: it could not start, it exited non-zero or on a signal, or it was still
// running at the deadline, when its whole process group (it runs in a group of its own) is
// killed. posix_spawn, not fork: the caller may hold MPI's and the interconnect's resources.
std::string run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        std::string* out = nullptr);

}  // namespace dp
