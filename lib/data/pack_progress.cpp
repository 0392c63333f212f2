#include "data/pack_progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/log.h"
#include "core/timer.h"

namespace dp::data {
namespace {

std::string clock_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02d}", s / 60, s % 60);
}

constexpr double kBarRedrawSeconds = 0.2;
constexpr int kBarWidth = 30;

}  // namespace

PackProgress::Mode PackProgress::automatic() { return isatty(STDERR_FILENO) ? Mode::bar : Mode::lines; }

PackProgress::PackProgress(int64_t total, Mode mode, double every_seconds)
    : total_(total), mode_(mode), every_(every_seconds), start_(now_seconds()), last_(start_) {}

PackProgress::~PackProgress() { end_bar(); }

std::string PackProgress::status(int64_t done, int64_t total, double seconds) {
  const double rate = seconds > 0 ? double(done) / seconds : 0;
  const std::string eta = rate > 0 ? clock_text(double(total - done) / rate) : "?";
  return fmt::format("{}/{} files  {:.1f} files/s  eta {}", done, total, rate, eta);
}

void PackProgress::update(int64_t done) {
  const double now = now_seconds();
  const bool last = done >= total_;
  if (mode_ == Mode::none) return;
  if (mode_ == Mode::lines) {
    if (now - last_ < every_ && !last) return;
    last_ = now;
    log::info("pack: {}", status(done, total_, now - start_));
    return;
  }
  if (now - last_ < kBarRedrawSeconds && !last) return;
  last_ = now;
  const int filled = total_ > 0 ? int(kBarWidth * done / total_) : kBarWidth;
  std::fprintf(stderr, "\r[%s%s] %s", std::string(filled, '#').c_str(),
               std::string(kBarWidth - filled, '.').c_str(),
               status(done, total_, now - start_).c_str());
  std::fflush(stderr);
  bar_open_ = true;
  if (last) end_bar();
}

void PackProgress::end_bar() {
  if (!bar_open_) return;
  std::fputc('\n', stderr);
  std::fflush(stderr);
  bar_open_ = false;
}

}  // namespace dp::data
