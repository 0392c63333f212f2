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

namespace {
// An error is one line of UTF-8 text whatever it quotes: a newline or other control character
// in a file name or a user's string, or a byte that is not part of well-formed UTF-8 (a file
// name in another encoding), is shown escaped (\n, \x1b, \xe9).
std::string one_line(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const size_t n = utf8::sequence_length(text, i);
    if (byte == '\n')
      out += "\\n";
    else if (n == 0 || byte < 0x20 || byte == 0x7f)
      out += fmt::format("\\x{:02x}", byte);
    else
      out.append(text, i, n);
    i += n == 0 ? 1 : n;
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
