// Progress of `dptrain pack` over many files: on a terminal, one bar on stderr redrawn in
// place (files done, rate, ETA); otherwise (a batch log) a plain line through log::info every
// `every_seconds`. The bar is ended with a newline before anything else is printed, so an
// error line that follows starts on a line of its own.
#pragma once

#include <cstdint>
#include <string>

namespace dp::data {

class PackProgress {
 public:
  enum class Mode { bar, lines, none };
  // bar when stderr is a terminal, lines otherwise.
  static Mode automatic();
  PackProgress(int64_t total, Mode mode, double every_seconds);
  ~PackProgress();  // ends the bar's line
  PackProgress(const PackProgress&) = delete;
  PackProgress& operator=(const PackProgress&) = delete;
  void update(int64_t done);
  // The text shown: "1234/20000 files  2563.1 files/s  eta 0:06".
  static std::string status(int64_t done, int64_t total, double seconds);

 private:
  void end_bar();
  int64_t total_;
  Mode mode_;
  double every_, start_, last_;
  bool bar_open_ = false;
};

}  // namespace dp::data
