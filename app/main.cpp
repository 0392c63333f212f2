// dptrain: one SPMD executable for every rank. Starts MPI (--version needs none), dispatches
// the subcommand, and turns any error into one clear line and a documented exit code on every
// rank: with more than one rank, the failing rank aborts the whole job so no rank waits forever.
#include <algorithm>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "app/commands.h"
#include "comm/mpi_session.h"
#include "core/error.h"
#include "core/log.h"
#include "train/preemption_signal.h"

namespace {

const char* kUsage = R"(usage: dptrain <command> [options]
       dptrain --version | -V

commands:
  train    train a model (see `dptrain train --help`)
  eval     evaluate a checkpoint on a dataset's test split
  pack     convert CIFAR-10/100 binary, MNIST / Fashion-MNIST IDX files or an image folder
           into one HDF5 file
  bench    time training steps on synthetic data
  inspect  print a packed dataset's, a checkpoint's, a metrics file's or an eval file's
           contents
  verify   check dptrain files end to end against their checksums, one line per file

options:
  --version, -V  print the version, the backends of this build (CPU oneDNN; CUDA, with the
                 CUDA runtime, cuDNN and NCCL built against) and the library versions
  --help, -h     print this help

exit codes:
)";

std::string usage_text() {
  std::string text = kUsage;
  for (int value = 0; value <= 255; ++value)  // every exit status a process can return
    if (const char* meaning = dp::exit_code_meaning(static_cast<dp::ExitCode>(value)))
      text += fmt::format("  {}  {}\n", value, meaning);
  return text;
}

int dispatch(const std::string& command, const std::vector<std::string>& args, dp::MpiSession& mpi,
             const std::optional<dp::PreemptionSignal>& signal) {
  if (command == "train") return dp::run_train(args, mpi, signal.value());
  if (command == "eval") return dp::run_eval(args, mpi);
  if (command == "pack") return dp::run_pack(args, mpi);
  if (command == "bench") return dp::run_bench(args, mpi);
  if (command == "inspect") return dp::run_inspect(args, mpi);
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << usage_text();
    return 0;
  }
  throw dp::UsageError(fmt::format("unknown command '{}' (try `dptrain help`)", command));
}

// --help given to some ranks only (an MPMD launch): those would print it and leave, and the
// others wait for them in the start-up's agreement until --collective-timeout. Refused on every
// rank instead; on all of them, each prints the help and leaves.
void agree_on_help(const std::string& command, const std::vector<std::string>& args,
                   const dp::MpiSession& mpi) {
  if (mpi.world_size() == 1) return;
  const auto is_help = [](const std::string& word) { return word == "--help" || word == "-h"; };
  const int asks =
      command == "help" || is_help(command) || std::any_of(args.begin(), args.end(), is_help);
  std::vector<int> all(mpi.world_size());
  DP_MPI_CHECK(MPI_Allgather(&asks, 1, MPI_INT, all.data(), 1, MPI_INT, MPI_COMM_WORLD));
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      throw dp::UsageError(
          fmt::format("option --help: rank {} {} it, rank 0 {}: give it to every rank or to none",
                      r, all[r] ? "has" : "has not", all[0] ? "has" : "has not"));
}

// Runs `body`; an error becomes its one line on stderr and its exit code.
template <typename Body>
int exit_code_of(Body&& body) {
  try {
    return body();
  } catch (const dp::Error& e) {
    dp::log::error("{}", e.what());
    return static_cast<int>(e.code());
  } catch (const std::bad_array_new_length& e) {  // a size computed wrong: a bug
    dp::log::error("internal error: {}", e.what());
    return static_cast<int>(dp::ExitCode::internal);
  } catch (const std::bad_alloc&) {
    // What the options asked to hold (a batch, an image size, a model): not a bug.
    dp::log::error(
        "out of memory: what this command was asked to hold (a batch, images, a "
        "model) does not fit in this node's memory");
    return static_cast<int>(dp::ExitCode::usage);
  } catch (const std::exception& e) {
    dp::log::error("internal error: {}", e.what());
    return static_cast<int>(dp::ExitCode::internal);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << usage_text();
    return static_cast<int>(dp::ExitCode::usage);
  }
  // Before MPI starts: the version needs no launcher (MPI may report its version uninitialised).
  if (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "-V") == 0)
    return exit_code_of(
        [&] { return dp::run_version(std::vector<std::string>(argv + 2, argv + argc)); });
  // verify reads files only: no launcher, and no MPI start-up for a script checking many files.
  if (std::strcmp(argv[1], "verify") == 0)
    return exit_code_of(
        [&] { return dp::run_verify(std::vector<std::string>(argv + 2, argv + argc)); });
  // Start-up's refusals (MPI's thread level, a launch Slurm and MPI disagree on) are the same
  // on every rank: each reports its own and ends, MPI finalised. For train, SIGUSR1/SIGTERM
  // mean "checkpoint and stop" from before MPI starts, for the process's life: one during
  // MPI's start-up or the option parsing would otherwise end the rank (the signal's default
  // action), and its Slurm job would not be requeued.
  std::optional<dp::PreemptionSignal> signal;
  std::optional<dp::MpiSession> mpi;
  if (const int code = exit_code_of([&] {
        if (std::strcmp(argv[1], "train") == 0) signal.emplace();
        mpi.emplace(&argc, &argv);
        if (signal) signal->reinstall();  // in case MPI_Init put handlers of its own there
        return 0;
      }))
    return code;
  dp::log::set_rank(mpi->rank(), mpi->world_size());
  // Read after MPI_Init, which may remove the launcher's own arguments.
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  const int code = exit_code_of([&] {
    agree_on_help(command, args, *mpi);
    return dispatch(command, args, *mpi, signal);
  });
  // A preempted run stops on every rank together, after its checkpoint: nothing to abort.
  if (code != 0 && code != static_cast<int>(dp::ExitCode::preempted) && mpi->world_size() > 1)
    mpi->abort(code);
  return code;
}
