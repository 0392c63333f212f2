// Pinning the CPU backend's OpenMP threads, one per core, as OMP_PROC_BIND=close
// OMP_PLACES=cores would: libgomp reads those only at program start, before a rank knows its
// local rank, so the backend binds its threads itself once it does.
#pragma once

#include <string>

#include "core/cpu_affinity.h"

namespace dp::cpu {

// Binds OpenMP thread i of a `threads`-wide team to one core of this process's affinity mask.
// Where the launcher already gave the rank its share (mpirun --bind-to core, srun
// --cpu-bind=cores) the mask holds just that; where every rank on the node sees all cores,
// local rank r takes the cores [r * threads, (r + 1) * threads) of the mask. The calling
// thread is thread 0, so threads it starts later (the loader's) share its core; they need
// little. Returns what was done, for the log: "pinned to cores 0-1", or why not.
std::string pin_openmp_threads(int threads, int local_rank, int local_size);

// The width of a rank's team when --threads is 0: its share of the node's cores, but no more
// than the cores its affinity mask allows. The mask is smaller where the launcher bound the
// rank (mpirun binds each rank to one core when it starts two or fewer, so `mpirun -np 1` on a
// 2-core machine would otherwise run two threads on one core, spinning at each other's barriers;
// see tests/bench/results/code-measurements-backend.md). `note` says so for the log when the
// binding cut the share; it is empty otherwise.
struct DefaultTeam {
  int threads;
  std::string note;
};
DefaultTeam default_team(int local_size);

}  // namespace dp::cpu
