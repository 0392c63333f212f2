// A subcommand's option parsing on every rank of a job. Each rank parses its own command line;
// where every rank fails alike (the same message: the same bad option on every command line,
// the usual case), rank 0 alone reports it, as throw_agreed_verdict does: the job's log holds
// one line and one MPI_Abort, not one line per rank and every rank's abort, whose launcher
// noise read as a crash. A failure on some ranks only is reported by each of them.
#pragma once

#include "comm/agreed_verdict.h"

namespace dp {

// Collective over MPI_COMM_WORLD. Returns what `parse` returns (false: --help was printed), or
// rethrows its error (run_agreeing: one line where every rank fails alike).
template <class Parse>
bool parse_on_every_rank(Parse&& parse) {
  bool parsed = false;
  run_agreeing([&] { parsed = parse(); });
  return parsed;
}

}  // namespace dp
