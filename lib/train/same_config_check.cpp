#include "train/same_config_check.h"

#include <mpi.h>

#include <set>
#include <vector>

#include "comm/agreed_verdict.h"
#include "comm/mpi_session.h"
#include "comm/mpi_strings.h"
#include "core/error.h"
#include "train/config.h"

namespace dp {
namespace {

// Rank 0's options, as every rank sees them (broadcast as name, value, name, value...).
std::map<std::string, std::string> rank0_options(const std::map<std::string, std::string>& mine) {
  std::vector<std::string> flat;
  for (const auto& [name, value] : mine) {
    flat.push_back(name);
    flat.push_back(value);
  }
  flat = broadcast_strings(flat);
  std::map<std::string, std::string> options;
  for (size_t i = 0; i + 1 < flat.size(); i += 2) options[flat[i]] = flat[i + 1];
  return options;
}

std::string value_or_unset(const std::map<std::string, std::string>& options,
                           const std::string& name) {
  auto it = options.find(name);
  return it == options.end() ? std::string("(unset)") : "'" + it->second + "'";
}

}  // namespace

bool may_differ_between_ranks(const std::string& option) {
  static const std::set<std::string> kPerRank = {"threads", "pin-threads", "data", "config"};
  return kPerRank.count(option) > 0;
}

std::string first_differing_option(const std::map<std::string, std::string>& mine,
                                   const std::map<std::string, std::string>& reference) {
  std::set<std::string> names;
  for (const auto& entry : mine) names.insert(entry.first);
  for (const auto& entry : reference) names.insert(entry.first);
  for (const std::string& name : names) {
    if (may_differ_between_ranks(name)) continue;
    auto a = mine.find(name), b = reference.find(name);
    if (a == mine.end() || b == reference.end() || a->second != b->second) return name;
  }
  return "";
}

void check_same_config_on_all_ranks(const TrainConfig& config) {
  check_same_options_on_all_ranks(config.effective);
}

void check_same_options_on_all_ranks(const std::map<std::string, std::string>& effective,
                                     const std::string& where) {
  int size = 1;
  DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  if (size == 1) return;
  const std::map<std::string, std::string> reference = rank0_options(effective);
  const std::string option = first_differing_option(effective, reference);
  // Each rank's finding: the first option it differs in ("" for none) and its value.
  const auto findings = allgather_strings({option, value_or_unset(effective, option)});
  for (int r = 1; r < size; ++r) {
    const std::string& differs = findings[r][0];
    if (differs.empty()) continue;
    throw_agreed_verdict(UsageError(
        fmt::format("option --{}: rank {} has {}, rank 0 has {}: every rank must run the same "
                    "configuration ({})",
                    differs, r, findings[r][1], value_or_unset(reference, differs), where)));
  }
}

}  // namespace dp
