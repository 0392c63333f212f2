// Strings exchanged between the ranks of MPI_COMM_WORLD (the start-of-job checks that every
// rank runs the same configuration on the same data and resumes the same checkpoint). Each is a
// collective: every rank calls it, in the same order. Strings arrive whole, whatever their
// length or bytes.
#pragma once

#include <string>
#include <vector>

namespace dp {

// Every rank's list of strings, on every rank: result[r] is rank r's list, whole.
std::vector<std::vector<std::string>> allgather_strings(const std::vector<std::string>& mine);

// Rank 0's list of strings, on every rank (the other ranks' `mine` is ignored).
std::vector<std::string> broadcast_strings(const std::vector<std::string>& mine);

}  // namespace dp
