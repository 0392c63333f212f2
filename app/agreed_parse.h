// A subcommand's option parsing on every rank of a job. Each rank parses its own command line;
// where every rank fails alike (the same message: the same bad option on every command line,
// the usual case), rank 0 alone reports it, as throw_agreed_verdict does: the job's log holds
// one line and one MPI_Abort, not one line per rank and every rank's abort, whose launcher
// noise read as a crash. A failure on some ranks only is reported by each of them.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <exception>
#include <string>

#include "comm/agreed_verdict.h"
#include "comm/mpi_session.h"
#include "comm/mpi_strings.h"
#include "core/error.h"

namespace dp {

// Collective over MPI_COMM_WORLD. Returns what `parse` returns (false: --help was printed), or
// rethrows its error.
template <class Parse>
bool parse_on_every_rank(Parse&& parse) {
  std::exception_ptr failure;
  std::string message;
  bool parsed = false;
  try {
    parsed = parse();
  } catch (const std::exception& e) {  // a dp::Error, or a library's (a bug: still agreed)
    failure = std::current_exception();
    message = e.what();
  }
  int size = 1;
  DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  if (size > 1) {
    const auto all = allgather_strings({failure ? "failed" : "parsed", message});
    const bool alike = std::all_of(all.begin(), all.end(), [&](const auto& rank) {
      return rank[0] == "failed" && rank[1] == all[0][1];
    });
    if (alike) let_rank_zero_report_first();
  }
  if (failure) std::rethrow_exception(failure);
  return parsed;
}

}  // namespace dp
