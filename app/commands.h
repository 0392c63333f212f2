// The subcommands of the dptrain executable. Each takes its arguments (without the
// subcommand's name) and returns the process exit code, or throws dp::Error.
#pragma once

#include <string>
#include <vector>

namespace dp {

class MpiSession;
class PreemptionSignal;

// `signal`: the SIGUSR1/SIGTERM handlers main installed before MPI started.
int run_train(const std::vector<std::string>& args, MpiSession& mpi,
              const PreemptionSignal& signal);
int run_eval(const std::vector<std::string>& args, MpiSession& mpi);
int run_pack(const std::vector<std::string>& args, MpiSession& mpi);
int run_bench(const std::vector<std::string>& args, MpiSession& mpi);
int run_inspect(const std::vector<std::string>& args, MpiSession& mpi);
// `dptrain verify FILE...`: needs no MPI session either.
int run_verify(const std::vector<std::string>& args);
// `dptrain --version` / `-V`: needs no MPI session.
int run_version(const std::vector<std::string>& args);

}  // namespace dp
