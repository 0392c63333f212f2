// A verdict every rank reached alike (a bad option, a file every rank found damaged) is
// reported once: rank 0 throws at once, so the job log holds one line and its MPI_Abort
// (app/main.cpp) ends the others; they throw it too after a grace, should that abort not come.
#pragma once

#include <functional>
#include <type_traits>

#include "core/error.h"

namespace dp {

// Returns at once on rank 0 and inside run_agreeing; the other ranks first wait this long.
constexpr int kAgreedVerdictGraceSeconds = 20;
void let_rank_zero_report_first();

// Ends a check whose verdict every rank reached alike: rank 0 throws `error` at once; the others
// throw it too (as its own type: a DataError stays one) after kAgreedVerdictGraceSeconds.
template <class E>
[[noreturn]] void throw_agreed_verdict(const E& error) {
  static_assert(std::is_base_of_v<Error, E>, "a verdict is an Error");
  let_rank_zero_report_first();
  throw error;
}

// Runs `body` and rethrows its error (of any type). Collective over MPI_COMM_WORLD: every
// rank calls it at the same point, and `body` holds no collective. Where every rank failed
// alike (the same message: the same damaged file, the same bad option on every command line),
// rank 0 reports at once and the others after the grace, as throw_agreed_verdict does; a failure
// on some ranks only is reported by each of them. Inside `body` throw_agreed_verdict throws at
// once: this agreement takes its place.
void run_agreeing(const std::function<void()>& body);

}  // namespace dp
