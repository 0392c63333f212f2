// Every rank of a job must read the same input file. A path that differs between ranks (a
// per-node copy of another dataset, a typo in a per-rank wrapper script) would otherwise train
// one model on two datasets without a word. Before any rank validates the file, the ranks
// compare a fingerprint of what their path names: the size and a SHA-256 of the first and last
// MiB (cheap for any size; identical copies staged onto node-local disks still agree).
#pragma once

#include <string>

namespace dp {

// Collective over MPI_COMM_WORLD (call it on every rank, with `option` the same everywhere).
// Throws DataError on every rank, naming rank 0's path and the first rank whose file differs,
// when the fingerprints disagree. A rank whose file is missing or unreadable does not count as
// different: opening it fails next, with its own clear message.
void check_same_input_on_all_ranks(const std::string& option, const std::string& path);

// The fingerprint ("<size> <sha256 hex>"), or "" when the file cannot be read.
std::string input_fingerprint(const std::string& path);

}  // namespace dp
