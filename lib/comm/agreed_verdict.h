// A verdict every rank reached alike (a bad option, a file every rank found damaged) is
// reported once: rank 0 throws at once, so the job log holds one line and its MPI_Abort
// (app/main.cpp) ends the others; they throw it too after a grace, should that abort not come.
#pragma once

#include <type_traits>

#include "core/error.h"

namespace dp {

// Returns at once on rank 0; the other ranks first wait this long.
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

}  // namespace dp
