// Parameter groups from the options: --bn-bias-lr-factor makes group "bn_bias" (every BN bias
// and nothing else) at lr x F with weight decay / F, so lr x decay is the default group's;
// --freeze PATTERN[:EPOCHS] makes a group of the names the glob matches, frozen from the start
// or after EPOCHS epochs (FreezeCallback), whose parameters then require no gradient
// (apply_frozen_groups); a pattern matching nothing is refused by name, one whose parameters
// went elsewhere says where.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "step_fixture.h"
#include "train/freeze_callback.h"
#include "train/param_groups.h"
#include "train/run_setup.h"

namespace dp::test {
namespace {

TEST(ConfiguredGroups, BnBiasGroupKeepsLrTimesDecayAndFreezeGroupsTakeTheirNames) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  TrainConfig config;
  config.arch = "resnet8";
  config.lr = 1.4648e-3;
  config.weight_decay = 1.9957e-3;
  config.bn_bias_lr_factor = 64;
  config.freeze = {"conv1.weight", "fc.*:3"};
  optim::Optimizer opt = make_optimizer(config, *model, {});
  ASSERT_EQ(opt.groups().size(), 4u);
  const optim::ParamGroup& conv1 = opt.group("freeze:conv1.weight");
  const optim::ParamGroup& fc = opt.group("freeze:fc.*");
  const optim::ParamGroup& bn = opt.group("bn_bias");
  const optim::ParamGroup& rest = opt.group("default");
  EXPECT_TRUE(conv1.frozen);
  EXPECT_FALSE(fc.frozen) << "trains for 3 epochs first";
  EXPECT_EQ(bn.lr_factor, 64.0);
  EXPECT_NEAR(bn.lr_factor * bn.weight_decay, rest.lr_factor * rest.weight_decay, 1e-12);
  EXPECT_FLOAT_EQ(rest.weight_decay, 1.9957e-3f);
  // torch's group would hold the Python float 1.9957e-3 / 64, rounded to float by SGD's kernel.
  EXPECT_EQ(bn.weight_decay, static_cast<float>(1.9957e-3 / 64));
  // Each entry in exactly the group its name or role says.
  auto in = [](const optim::ParamGroup& g, const nn::StateEntry& e) {
    for (const optim::ParamRange& r : g.ranges)
      if (e.offset >= r.offset && e.offset + e.numel() <= r.offset + r.numel) return true;
    return false;
  };
  int bn_biases = 0;
  for (const nn::StateEntry& e : model->store().entries()) {
    if (e.kind != nn::StateKind::parameter) continue;
    const bool is_fc = e.name.starts_with("fc.");
    EXPECT_EQ(in(conv1, e), e.name == "conv1.weight") << e.name;
    EXPECT_EQ(in(fc, e), is_fc) << e.name;
    EXPECT_EQ(in(bn, e), e.param_role == nn::ParamRole::bn_bias) << e.name;
    EXPECT_EQ(in(rest, e), e.name != "conv1.weight" && !is_fc &&
                               e.param_role != nn::ParamRole::bn_bias)
        << e.name;
    bn_biases += e.param_role == nn::ParamRole::bn_bias;
  }
  EXPECT_GT(bn_biases, 3);

  // fc.* trains in epochs 1-3 and is frozen from epoch 4 on.
  FreezeCallback freeze("freeze:fc.*", 3);
  for (int64_t epoch : {1, 3, 4, 9}) {
    freeze.before_step(StepPosition{epoch, 0, 0}, opt);
    EXPECT_EQ(opt.group("freeze:fc.*").frozen, epoch > 3) << epoch;
  }
  // A frozen group's parameters do not move; the others do.
  Tensor grads = model->grads();
  backend->fill(grads, 0.5f);
  const auto before = to_host(*backend, model->params());
  opt.step();
  const auto after = to_host(*backend, model->params());
  for (const nn::StateEntry& e : model->store().entries()) {
    if (e.kind != nn::StateKind::parameter) continue;
    const bool frozen = e.name == "conv1.weight" || e.name.starts_with("fc.");
    EXPECT_EQ(before[e.offset] == after[e.offset], frozen) << e.name;
  }
  // The training step's apply_frozen_groups: exactly the frozen groups' parameters, and the
  // fixed ones, require no gradient; the version moves when, and only when, that changes.
  nn::ParameterStore& store = model->store();
  const uint64_t version = store.requires_grad_version();
  apply_frozen_groups(opt.groups(), store);
  const uint64_t frozen_version = store.requires_grad_version();
  EXPECT_GT(frozen_version, version);
  for (nn::ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const nn::StateEntry& e = store.entry(id);
    if (e.kind != nn::StateKind::parameter) continue;
    const bool frozen = e.name == "conv1.weight" || e.name.starts_with("fc.");
    EXPECT_EQ(store.requires_grad(id), e.trainable && !frozen) << e.name;
  }
  apply_frozen_groups(opt.groups(), store);
  EXPECT_EQ(store.requires_grad_version(), frozen_version) << "nothing changed";
  opt.group("freeze:fc.*").frozen = false;
  apply_frozen_groups(opt.groups(), store);
  EXPECT_TRUE(store.requires_grad(*store.find("fc.weight"))) << "thawed";
  EXPECT_FALSE(store.requires_grad(*store.find("conv1.weight")));
}

// The decay of a group at lr x F is computed from the options' doubles and rounded once, as a
// torch user's Python 5e-4 / 10 is: 5e-5f, where the float 5e-4f / 10 rounds to 5.0000002e-5f.
TEST(ConfiguredGroups, BnBiasDecayIsTheOptionsQuotientRoundedOnce) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  TrainConfig config;
  config.arch = "resnet8";
  config.weight_decay = 5e-4;
  config.bn_bias_lr_factor = 10;
  optim::Optimizer opt = make_optimizer(config, *model, {});
  EXPECT_EQ(opt.group("bn_bias").weight_decay, 5e-5f);
  EXPECT_EQ(opt.group("default").weight_decay, 5e-4f);
}

// --dampening reaches every group as the option's double (the update rounds 1 - dampening to
// float once, as torch does: backend test CpuSgd.DampeningFactorIsTorchsRoundedOnce).
TEST(ConfiguredGroups, DampeningReachesEveryGroupAsTheOptionsDouble) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  TrainConfig config;
  config.arch = "resnet8";
  config.dampening = 0.9;
  config.bn_bias_lr_factor = 10;
  config.freeze = {"fc.*:3"};
  optim::Optimizer opt = make_optimizer(config, *model, {});
  for (const optim::ParamGroup& g : opt.groups()) EXPECT_EQ(g.dampening, 0.9) << g.name;
}

TEST(ConfiguredGroups, BadFreezeValuesAreRefusedNamingTheOption) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  TrainConfig config;
  config.arch = "resnet8";
  for (std::string bad : {"nosuch.weight", "conv1.weight:x", ":3"}) {
    config.freeze = {bad};
    try {
      make_optimizer(config, *model, {});
      ADD_FAILURE() << bad << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--freeze"), std::string::npos) << e.what();
    }
  }
}

// A pattern whose parameters all went elsewhere says where, not that it matches nothing: to an
// earlier --freeze group (the first group that takes a parameter keeps it), or fixed by the
// model (airbench's BN scales).
TEST(ConfiguredGroups, AnEmptyFreezeGroupSaysWhereItsParametersWent) {
  auto backend = make_cpu_backend(1);
  const auto refusal = [&](const std::string& arch, std::vector<std::string> freeze) {
    nn::ModelSpec spec = small_resnet();
    spec.arch = arch;
    auto model = nn::make_model(spec, *backend);
    TrainConfig config;
    config.arch = arch;
    config.freeze = std::move(freeze);
    try {
      make_optimizer(config, *model, {});
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(refusal("resnet8", {"conv1.*", "conv1.weight"}),
            "option --freeze: 'conv1.weight' matches only parameters an earlier group took "
            "(conv1.weight in group 'freeze:conv1.*') of resnet8");
  EXPECT_EQ(refusal("airbench94", {"block1.norm1.weight"}),
            "option --freeze: 'block1.norm1.weight' matches only parameters the model keeps "
            "fixed (block1.norm1.weight) of airbench94");
  EXPECT_EQ(refusal("airbench94", {"block1.*", "block1.norm1.*"}),
            "option --freeze: 'block1.norm1.*' matches only parameters the model keeps fixed "
            "(block1.norm1.weight) or an earlier group took (block1.norm1.bias in group "
            "'freeze:block1.*') of airbench94");
  EXPECT_EQ(refusal("resnet8", {"nosuch.*"}),
            "option --freeze: 'nosuch.*' matches no parameter of resnet8");
}

// A malformed value is refused with the other options, before the run starts anything.
TEST(ConfiguredGroups, MalformedFreezeValuesAreRefusedWhileParsingOptions) {
  for (std::string bad : {"conv1.weight:x", ":3", "conv1.weight:", "conv1.weight:-1",
                          "conv1.weight:+3", "conv1.weight:99999999999999999999"}) {
    TrainConfig c;
    try {
      parse_train_config({"--data", "x.h5", "--freeze", bad}, c);
      ADD_FAILURE() << bad << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--freeze"), std::string::npos) << e.what();
    }
  }
}

// Several `freeze =` lines of a config file make one list, and --freeze on the command line
// replaces it, as any command-line option replaces the config file's value.
TEST(ConfiguredGroups, CommandLineFreezeReplacesTheConfigFilesList) {
  const std::filesystem::path cfg =
      std::filesystem::temp_directory_path() / "dptrain_freeze_override.cfg";
  std::ofstream(cfg) << "freeze = whiten.weight\nfreeze = whiten.bias:3\n";
  const auto freeze = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"--data", "x.h5", "--config", cfg.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    TrainConfig c;
    parse_train_config(args, c);
    return c.freeze;
  };
  EXPECT_EQ(freeze({}), (std::vector<std::string>{"whiten.weight", "whiten.bias:3"}));
  EXPECT_EQ(freeze({"--freeze", "whiten.bias:1"}), (std::vector<std::string>{"whiten.bias:1"}));
  std::filesystem::remove(cfg);
}

}  // namespace
}  // namespace dp::test
