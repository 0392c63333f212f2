// Rank-aware logging for batch logs: info goes to stdout on rank 0 only, errors go to stderr
// from any rank and name the rank, so a multi-rank job log shows who failed.
#pragma once

#include <fmt/format.h>

#include <cstdio>

namespace dp::log {

void set_rank(int rank, int world_size);
int rank();
void write_info(const std::string& line);
void write_error(const std::string& line);

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write_info(fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write_error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace dp::log
