// Pinning the CPU backend's OpenMP threads, one per core, as OMP_PROC_BIND=close
// OMP_PLACES=cores would: libgomp reads those only at program start, before a rank knows its
// local rank, so the backend binds its threads itself once it does.
#pragma once

#include <string>

namespace dp::cpu {

// Binds OpenMP thread i of a `threads`-wide team to one core of this process's affinity mask.
// Where the launcher already gave the rank its share (mpirun --bind-to core, srun
// --cpu-bind=cores) the mask holds just that; where every rank on the node sees all cores,
// local rank r takes the cores [r * threads, (r + 1) * threads) of the mask. The calling
// thread is thread 0, so threads it starts later (the loader's) share its core; they need
// little. Returns what was done, for the log: "pinned to cores 0-1", or why not.
std::string pin_openmp_threads(int threads, int local_rank, int local_size);

}  // namespace dp::cpu
