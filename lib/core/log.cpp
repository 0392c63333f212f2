#include "core/log.h"

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

namespace {
// An error is one line whatever it quotes: a newline or other control character in a file
// name or a user's string is shown escaped (\n, \x1b).
std::string one_line(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (ch == '\n')
      out += "\\n";
    else if (byte < 0x20 || byte == 0x7f)
      out += fmt::format("\\x{:02x}", byte);
    else
      out += ch;
  }
  return out;
}
}  // namespace

void write_error(const std::string& line) {
  std::string s = g_world > 1 ? fmt::format("dptrain: rank {}: error: {}\n", g_rank, one_line(line))
                              : fmt::format("dptrain: error: {}\n", one_line(line));
  std::fputs(s.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace dp::log
