// Every rank of a job must run the same configuration. The weights are broadcast once, but
// each rank then steps with its own --lr, samples with its own --seed and stops after its own
// --epochs: a config file or command line that differs between nodes would train a wrong
// model without a word, or leave one rank waiting in a collective for the others. The ranks
// compare their effective options (command line over config file, defaults included) before
// anything else happens.
#pragma once

#include <map>
#include <string>

namespace dp {

struct TrainConfig;

// The options that may differ between ranks: compute threads and their pinning (per node),
// --data (a staged copy under another path: check_same_input_on_all_ranks compares the file
// itself) and --config (a copy of the file elsewhere; its values are compared).
bool may_differ_between_ranks(const std::string& option);

// The first option (in name order) whose value differs between `mine` and `reference`, or ""
// when they agree; options that may differ between ranks are left out.
std::string first_differing_option(const std::map<std::string, std::string>& mine,
                                   const std::map<std::string, std::string>& reference);

// Collective over MPI_COMM_WORLD. Throws UsageError on every rank, naming the first rank and
// option that differ from rank 0 and both values, when the configurations disagree.
void check_same_config_on_all_ranks(const TrainConfig& config);
// The same for any command's effective options (name -> value, defaults included), which
// come from `where` ("command line" for a command without a config file).
void check_same_options_on_all_ranks(const std::map<std::string, std::string>& effective,
                                     const std::string& where = "command line and config file");

}  // namespace dp
