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
  bool TrainConfig::*member;
  std::vector<std::string> needs;  // other options its validation requires
};

const Switch kSwitches[] = {
    {"zero-init-residual", &TrainConfig::zero_init_residual, {}},
    {"drop-last", &TrainConfig::drop_last, {}},
    {"nesterov", &TrainConfig::nesterov, {}},
    {"no-decay-bn-bias", &TrainConfig::no_decay_bn_bias, {}},
    {"lookahead-each-epoch", &TrainConfig::lookahead_each_epoch, {"--lookahead-every", "5"}},
    {"deterministic", &TrainConfig::deterministic, {}},
    {"overwrite", &TrainConfig::overwrite, {}},
    {"sync-bn", &TrainConfig::sync_bn, {}},
};

bool parsed(const Switch& s, const std::vector<std::string>& value) {
  std::vector<std::string> args = {"--data", "x.h5", std::string("--") + s.option};
  args.insert(args.end(), value.begin(), value.end());
  args.insert(args.end(), s.needs.begin(), s.needs.end());
  TrainConfig c;
  EXPECT_TRUE(parse_train_config(args, c)) << s.option;
  return c.*s.member;
}

TEST(SwitchOptions, OffByDefaultAndOnAsABareFlagOrExplicitValue) {
  for (const Switch& s : kSwitches) {
    SCOPED_TRACE(s.option);
    EXPECT_FALSE(TrainConfig{}.*s.member);
    EXPECT_TRUE(parsed(s, {}));
    EXPECT_TRUE(parsed(s, {"true"}));
    EXPECT_FALSE(parsed(s, {"false"}));
  }
}

}  // namespace
}  // namespace dp::test
