#include "train/same_config_check.h"

#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "comm/mpi_session.h"
#include "core/error.h"
#include "train/config.h"
#include "train/same_input_check.h"

namespace dp {
namespace {

// Each rank's finding for MPI_Allgather: the option, then this rank's value (cut to fit).
constexpr size_t kOptionBytes = 128, kValueBytes = 896;
constexpr size_t kRecordBytes = kOptionBytes + kValueBytes;

// "name\0value\0" for every option: rank 0's configuration as one broadcast buffer.
std::vector<char> serialise(const std::map<std::string, std::string>& options) {
  std::vector<char> bytes;
  for (const auto& [name, value] : options) {
    bytes.insert(bytes.end(), name.begin(), name.end());
    bytes.push_back('\0');
    bytes.insert(bytes.end(), value.begin(), value.end());
    bytes.push_back('\0');
  }
  return bytes;
}

std::map<std::string, std::string> deserialise(const std::vector<char>& bytes) {
  std::map<std::string, std::string> options;
  for (size_t at = 0; at < bytes.size();) {
    std::string name(bytes.data() + at);
    at += name.size() + 1;
    std::string value(bytes.data() + at);
    at += value.size() + 1;
    options[name] = value;
  }
  return options;
}

std::map<std::string, std::string> rank0_options(const std::map<std::string, std::string>& mine) {
  std::vector<char> bytes = serialise(mine);
  uint64_t size = bytes.size();
  DP_MPI_CHECK(MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
  bytes.resize(size);
  DP_MPI_CHECK(MPI_Bcast(bytes.data(), int(size), MPI_CHAR, 0, MPI_COMM_WORLD));
  return deserialise(bytes);
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
  int rank = 0, size = 1;
  DP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  DP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  if (size == 1) return;
  const std::map<std::string, std::string> reference = rank0_options(config.effective);
  const std::string option = first_differing_option(config.effective, reference);
  std::vector<char> mine(kRecordBytes, '\0');
  const std::string value = value_or_unset(config.effective, option);
  std::memcpy(mine.data(), option.data(), std::min(option.size(), kOptionBytes - 1));
  std::memcpy(mine.data() + kOptionBytes, value.data(), std::min(value.size(), kValueBytes - 1));
  std::vector<char> all(kRecordBytes * size);
  DP_MPI_CHECK(MPI_Allgather(mine.data(), int(kRecordBytes), MPI_CHAR, all.data(),
                             int(kRecordBytes), MPI_CHAR, MPI_COMM_WORLD));
  for (int r = 1; r < size; ++r) {
    const std::string differs(all.data() + r * kRecordBytes);
    if (differs.empty()) continue;
    throw_agreed_verdict(UsageError(fmt::format(
        "option --{}: rank {} has {}, rank 0 has {}: every rank must run the same "
        "configuration (command line and config file)",
        differs, r, std::string(all.data() + r * kRecordBytes + kOptionBytes),
        value_or_unset(reference, differs))));
  }
}

}  // namespace dp
