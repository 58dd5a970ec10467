// The progress display of long passes over data (stderr): a bar on a terminal, a line per 10 s otherwise.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "aciq/eval.hpp"

namespace aciq::eval {

class Progress {
 public:
  // A bar redrawn in place only when stderr is a terminal; into a file or a pipe, one plain line at
  // most every kLogInterval seconds, so logs stay short.
  Progress(const LoopOptions& o, std::int64_t total)
      : on_(o.progress), tty_(::isatty(::fileno(stderr)) != 0), label_(o.label), total_(total) {}
  void update(std::int64_t done) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    if (!tty_) {
      if (std::chrono::duration<double>(now - last_line_).count() < kLogInterval) return;
      last_line_ = now;
      std::fprintf(stderr, "%s: %lld/%lld samples, %.0f img/s\n", label_.c_str(),
                   static_cast<long long>(done), static_cast<long long>(total_), rate);
      return;
    }
    drawn_ = true;
    const int width = 30;
    const int filled = total_ ? static_cast<int>(width * done / total_) : width;
    std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld  %.0f img/s ", label_.c_str(), filled,
                 "##############################", width - filled, "", static_cast<long long>(done),
                 static_cast<long long>(total_), rate);
    std::fflush(stderr);
  }
  ~Progress() {
    if (drawn_) std::fputc('\n', stderr);
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  static constexpr double kLogInterval = 10.0;
  bool on_;
  bool tty_;
  bool drawn_ = false;
  std::string label_;
  std::int64_t total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_line_ = start_;
};

}  // namespace aciq::eval
