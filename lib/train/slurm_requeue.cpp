#include "train/slurm_requeue.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <sstream>

#include "core/subprocess.h"

namespace dp {
namespace {

// How long one scontrol call may take. A SIGTERM leaves the job KillWait (30 s by default)
// before SIGKILL; both calls together must leave the ranks time to exit with the checkpoint's
// code. A controller that answers takes milliseconds.
constexpr std::chrono::seconds kScontrolTimeout{10};

// Slurm's [D-]HH:MM:SS (also MM:SS); -1 for UNLIMITED, Partition_Limit or anything else.
long slurm_seconds(const std::string& text) {
  long days = 0, parts[3] = {0, 0, 0};
  int count = 0;
  std::string rest = text;
  if (const size_t dash = rest.find('-'); dash != std::string::npos) {
    days = std::atol(rest.substr(0, dash).c_str());
    rest = rest.substr(dash + 1);
  }
  std::istringstream in(rest);
  for (std::string part; count < 3 && std::getline(in, part, ':'); ++count) {
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos) return -1;
    parts[count] = std::atol(part.c_str());
  }
  if (count < 2) return -1;
  const long hms =
      count == 3 ? parts[0] * 3600 + parts[1] * 60 + parts[2] : parts[0] * 60 + parts[1];
  return days * 86400 + hms;
}

}  // namespace

std::string slurm_job_id() {
  const char* id = std::getenv("SLURM_JOB_ID");
  return id ? std::string(id) : std::string();
}

std::map<std::string, std::string> slurm_job_fields(const std::string& job_id) {
  std::string text;
  std::map<std::string, std::string> fields;
  if (!run_command({"scontrol", "--oneliner", "show", "job", job_id}, kScontrolTimeout, &text)
           .empty())
    return fields;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    const size_t equals = word.find('=');
    if (equals != std::string::npos)
      fields.emplace(word.substr(0, equals), word.substr(equals + 1));
  }
  return fields;
}

bool is_batch_job(const std::map<std::string, std::string>& job) {
  const auto flag = job.find("BatchFlag");
  return flag == job.end() || flag->second != "0";
}

std::string why_not_requeue(const std::map<std::string, std::string>& job) {
  const auto field = [&](const char* name) {
    const auto it = job.find(name);
    return it == job.end() ? std::string() : it->second;
  };
  const std::string state = field("JobState");
  // Unreadable, or still running (the --signal warning before the time limit): requeue.
  if (state.empty() || state == "RUNNING") return "";
  if (state == "PENDING" || state.rfind("REQUEUE", 0) == 0) return "it is requeued already";
  // Ending: by its time limit or a preemption it comes back; else its user cancelled it.
  const long limit = slurm_seconds(field("TimeLimit"));
  const long ran = slurm_seconds(field("RunTime"));
  if (limit >= 0 && ran >= limit) return "";
  if (!field("PreemptTime").empty() && field("PreemptTime") != "None") return "";
  if (state == "TIMEOUT" || state == "PREEMPTED") return "";
  return fmt::format(
      "it is ending before its time limit and was not preempted: cancelled (scancel), or "
      "requeued by someone else (JobState={} RunTime={} TimeLimit={} PreemptTime={})",
      state, field("RunTime"), field("TimeLimit"), field("PreemptTime"));
}

std::string requeue_slurm_job(const std::string& job_id) {
  return run_command({"scontrol", "requeue", job_id}, kScontrolTimeout);
}

}  // namespace dp
