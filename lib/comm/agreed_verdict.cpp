#include "comm/agreed_verdict.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include "comm/mpi_session.h"
#include "comm/mpi_strings.h"

namespace dp {
namespace {
thread_local int agreements_open = 0;  // run_agreeing's bodies running on this thread
}  // namespace

void let_rank_zero_report_first() {
  if (agreements_open > 0) return;  // the enclosing run_agreeing compares the verdicts
  int rank = 0;
  DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  if (rank != 0) std::this_thread::sleep_for(std::chrono::seconds(kAgreedVerdictGraceSeconds));
}

void run_agreeing(const std::function<void()>& body) {
  std::exception_ptr failure;
  std::string message;
  ++agreements_open;
  try {
    body();
  } catch (const std::exception& e) {  // a dp::Error, or a library's (a bug: still agreed)
    failure = std::current_exception();
    message = e.what();
  } catch (...) {  // not an exception type: still every rank's turn in the allgather below
    failure = std::current_exception();
    message = "an exception of an unknown type";
  }
  --agreements_open;
  int size = 1;
  DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  if (size > 1) {
    const auto all = allgather_strings({failure ? "failed" : "done", message});
    const bool alike = std::all_of(all.begin(), all.end(), [&](const auto& rank) {
      return rank[0] == "failed" && rank[1] == all[0][1];
    });
    if (alike) let_rank_zero_report_first();
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace dp
