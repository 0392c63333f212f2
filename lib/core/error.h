// Error types and the project's check macro. Each error class maps to one documented
// process exit code, so a batch script can tell a bad option from a bad file from a NaN.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace dp {

enum class ExitCode : int {
  ok = 0,
  internal = 1,      // a bug or an unexpected library failure
  usage = 2,         // bad command line or config file
  data = 3,          // missing, truncated or malformed input file
  numerical = 4,     // non-finite loss or gradients
  communication = 5, // a collective failed or timed out
  io = 6,            // an output file could not be written
  preempted = 7,     // stopped by SIGUSR1/SIGTERM after writing a checkpoint: resume it
};

// Each exit code's meaning in one phrase (`dptrain --help` prints them), nullptr for an int
// that is no ExitCode. No default case: -Wswitch (an error in CI's -Werror build) names a code
// added to the enum without its phrase.
constexpr const char* exit_code_meaning(ExitCode code) {
  switch (code) {
    case ExitCode::ok:
      return "ok";
    case ExitCode::internal:
      return "internal error";
    case ExitCode::usage:
      return "usage (a bad option or config file)";
    case ExitCode::data:
      return "data (a missing, truncated or malformed input file)";
    case ExitCode::numerical:
      return "numerical (a non-finite loss or gradient)";
    case ExitCode::communication:
      return "communication (a collective failed or timed out)";
    case ExitCode::io:
      return "output I/O";
    case ExitCode::preempted:
      return "preempted (stopped by SIGUSR1/SIGTERM after a checkpoint; resume with --resume auto)";
  }
  return nullptr;
}

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(ExitCode::usage, m) {}
};
struct DataError : Error {
  explicit DataError(const std::string& m) : Error(ExitCode::data, m) {}
};
struct NumericalError : Error {
  explicit NumericalError(const std::string& m) : Error(ExitCode::numerical, m) {}
};
struct IoError : Error {
  explicit IoError(const std::string& m) : Error(ExitCode::io, m) {}
};

// What every library's check macro (DP_CUDA_CHECK, DP_CUDNN_CHECK, DP_CUBLAS_CHECK,
// DP_NCCL_CHECK, DP_MPI_CHECK, DP_OPENSSL_CHECK) throws: `call` at file:line failed, with the
// library's own `reason`, as one message format and the exit code the library's failures map to.
// (HDF5's DP_H5_CHECK and DP_H5_WRITE_CHECK, io/hdf5.h, name the file and object instead of
// the call: what a user can act on.)
[[noreturn]] inline void throw_library_error(ExitCode code, const char* file, int line,
                                             const char* call, const std::string& reason) {
  throw Error(code, fmt::format("{}:{}: {} failed: {}", file, line, call, reason));
}

}  // namespace dp

// Internal invariant check: throws dp::Error(internal) with the source location.
#define DP_CHECK(cond, ...)                                                              \
  do {                                                                                   \
    if (!(cond))                                                                         \
      throw ::dp::Error(::dp::ExitCode::internal,                                        \
                        ::fmt::format("{}:{}: check '{}' failed: {}", __FILE__, __LINE__, \
                                      #cond, ::fmt::format(__VA_ARGS__)));               \
  } while (0)
