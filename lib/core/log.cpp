#include "core/log.h"

#include "core/utf8.h"

namespace dp::log {

static int g_rank = 0;
static int g_world = 1;

void set_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}

int rank() { return g_rank; }

void write_info(const std::string& line) {
  if (g_rank != 0) return;
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// An error is one line of UTF-8 text whatever it quotes (a file name, a user's string).
void write_error(const std::string& line) {
  const std::string text = utf8::escaped(line);
  std::string s = g_world > 1 ? fmt::format("dptrain: rank {}: error: {}\n", g_rank, text)
                              : fmt::format("dptrain: error: {}\n", text);
  std::fputs(s.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace dp::log
