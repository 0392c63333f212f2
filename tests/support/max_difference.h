// Differences for tolerance checks that a NaN cannot slip through: std::max(err, |a - b|) keeps
// err when |a - b| is NaN (every comparison with NaN is false), so an output of NaNs would
// score 0 and pass. Here a NaN difference counts as +inf, which fails any tolerance, and so do
// vectors of different lengths.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace dp::test {

inline double abs_difference(double a, double b) {
  const double d = std::abs(a - b);
  return std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
}

// max |a[i] - b[i]| over n entries (+inf if any difference is NaN).
template <typename A, typename B>
double max_abs_difference(const A* a, const B* b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i)
    worst = std::max(worst, abs_difference(static_cast<double>(a[i]), static_cast<double>(b[i])));
  return worst;
}

// Vectors of different lengths are +inf apart: an output cut short (or empty) has no entries
// to differ in, and must fail as a NaN does.
template <typename A, typename B>
double max_abs_difference(const std::vector<A>& a, const std::vector<B>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  return max_abs_difference(a.data(), b.data(), a.size());
}

}  // namespace dp::test
