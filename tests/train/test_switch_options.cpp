// The train options that are off by default (kSwitches: a new one belongs there) turn on as a
// bare flag (`--nesterov`, as `--nesterov true`), and still take an explicit value either way.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "train/config.h"

namespace dp::test {
namespace {

struct Switch {
  const char* option;
  bool (*value)(const TrainConfig&);  // the switch's field
  std::vector<std::string> needs;  // other options its validation requires
};

const Switch kSwitches[] = {
    {"zero-init-residual", [](const TrainConfig& c) { return c.zero_init_residual; }, {}},
    {"drop-last", [](const TrainConfig& c) { return c.drop_last; }, {}},
    {"nesterov", [](const TrainConfig& c) { return c.nesterov; }, {}},
    {"no-decay-bn-bias", [](const TrainConfig& c) { return c.no_decay_bn_bias; }, {}},
    {"lookahead-each-epoch",
     [](const TrainConfig& c) { return c.lookahead.each_epoch; },
     {"--lookahead-every", "5"}},
    {"deterministic", [](const TrainConfig& c) { return c.deterministic; }, {}},
    {"overwrite", [](const TrainConfig& c) { return c.overwrite; }, {}},
    {"sync-bn", [](const TrainConfig& c) { return c.sync_bn; }, {}},
};

bool parsed(const Switch& s, const std::vector<std::string>& value) {
  std::vector<std::string> args = {"--data", "x.h5", std::string("--") + s.option};
  args.insert(args.end(), value.begin(), value.end());
  args.insert(args.end(), s.needs.begin(), s.needs.end());
  TrainConfig c;
  EXPECT_TRUE(parse_train_config(args, c)) << s.option;
  return s.value(c);
}

TEST(SwitchOptions, OffByDefaultAndOnAsABareFlagOrExplicitValue) {
  for (const Switch& s : kSwitches) {
    SCOPED_TRACE(s.option);
    EXPECT_FALSE(s.value(TrainConfig{}));
    EXPECT_TRUE(parsed(s, {}));
    EXPECT_TRUE(parsed(s, {"true"}));
    EXPECT_FALSE(parsed(s, {"false"}));
  }
}

}  // namespace
}  // namespace dp::test
