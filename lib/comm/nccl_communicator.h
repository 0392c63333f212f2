// Communicator over NCCL for gradients in GPU memory (built only with DPTRAIN_WITH_CUDA, which
// defines DPTRAIN_WITH_NCCL for users of dp_comm). Every pointer passed to it is device memory
// of the current CUDA device. MPI must be initialised: rank 0's NCCL unique id is broadcast
// over MPI_COMM_WORLD, and NCCL ranks equal MPI ranks.
//
// A peer that dies leaves NCCL kernels spinning forever, so nothing here blocks blindly:
// every wait polls the CUDA event and ncclCommGetAsyncError, and an error or a wait longer
// than `timeout_seconds` aborts the communicator (ncclCommAbort) and throws
// dp::Error(communication) — main then ends the whole job.
#pragma once

#include <memory>

#include "comm/communicator.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace dp {

// `compute_stream`: where the gradients are produced (nullptr: the legacy default stream).
// Each collective is ordered after the work queued there so far, and every blocking call or
// PendingReduction::wait() returns only when the result is complete in device memory, or
// throws after `timeout_seconds` (--collective-timeout; 0: waits without a limit).
std::unique_ptr<Communicator> make_nccl_communicator(CUstream_st* compute_stream = nullptr,
                                                     double timeout_seconds = 600.0);

}  // namespace dp
