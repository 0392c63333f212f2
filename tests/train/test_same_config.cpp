// The ranks' configurations are compared option by option: the first that differs (in name
// order) is named, an option only one side has counts as different, and the per-node options
// (--threads, --pin-threads, --data, --config) are left out.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "train/same_config_check.h"

namespace dp::test {
namespace {

using Options = std::map<std::string, std::string>;

TEST(SameConfig, NamesTheFirstOptionThatDiffers) {
  const Options rank0 = {{"epochs", "1"}, {"lr", "0.1"}, {"seed", "0"}};
  EXPECT_EQ(first_differing_option(rank0, rank0), "");
  EXPECT_EQ(first_differing_option({{"epochs", "1"}, {"lr", "5"}, {"seed", "7"}}, rank0), "lr");
  EXPECT_EQ(first_differing_option({{"epochs", "1"}, {"lr", "0.1"}}, rank0), "seed");
  EXPECT_EQ(first_differing_option({{"epochs", "1"}, {"lr", "0.1"}, {"seed", "0"}, {"x", "1"}},
                                   rank0),
            "x");
}

TEST(SameConfig, PerNodeOptionsMayDiffer) {
  const Options rank0 = {{"threads", "0"}, {"pin-threads", "true"}, {"data", "/a/c.h5"},
                         {"config", "/a/j.cfg"}, {"lr", "0.1"}};
  const Options other = {{"threads", "8"}, {"pin-threads", "false"}, {"data", "/scratch/c.h5"},
                         {"config", "/b/j.cfg"}, {"lr", "0.1"}};
  EXPECT_EQ(first_differing_option(other, rank0), "");
  for (const char* name : {"threads", "pin-threads", "data", "config"})
    EXPECT_TRUE(may_differ_between_ranks(name)) << name;
  for (const char* name : {"lr", "epochs", "seed", "arch", "batch-size", "device", "resume"})
    EXPECT_FALSE(may_differ_between_ranks(name)) << name;
}

}  // namespace
}  // namespace dp::test
