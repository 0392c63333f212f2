// The zoo: arch name -> ResNet layout, and the airbench networks (nn/airbench.h), which have no
// shortcuts.
#include <fmt/ranges.h>

#include <map>

#include "core/error.h"
#include "nn/airbench.h"
#include "nn/model.h"
#include "nn/resnet.h"

namespace dp::nn {

namespace {

// The airbench networks by their block widths: airbench94's, and airbench95's (the published
// 95% variant: the same network wider, trained for 15 epochs).
const std::map<std::string, std::vector<int64_t>>& airbench_widths() {
  static const std::map<std::string, std::vector<int64_t>> widths = {
      {"airbench94", {64, 256, 256}}, {"airbench95", {128, 384, 384}}};
  return widths;
}

struct ZooEntry {
  BlockKind block;
  StemKind stem;
  std::vector<int64_t> blocks_per_stage;
  int64_t default_width;  // first stage; later stages double
  // He et al.'s CIFAR networks default to their paper's option A and may take B; torchvision's
  // archs have B only (their state_dict has the projections).
  ShortcutKind default_shortcut = ShortcutKind::B;
};

constexpr ShortcutKind kA = ShortcutKind::A;

const std::map<std::string, ZooEntry>& zoo() {
  static const std::map<std::string, ZooEntry> entries = {
      {"resnet18", {BlockKind::basic, StemKind::imagenet, {2, 2, 2, 2}, 64}},
      {"resnet34", {BlockKind::basic, StemKind::imagenet, {3, 4, 6, 3}, 64}},
      {"resnet50", {BlockKind::bottleneck, StemKind::imagenet, {3, 4, 6, 3}, 64}},
      {"resnet18_cifar", {BlockKind::basic, StemKind::cifar, {2, 2, 2, 2}, 64}},
      {"resnet34_cifar", {BlockKind::basic, StemKind::cifar, {3, 4, 6, 3}, 64}},
      {"resnet50_cifar", {BlockKind::bottleneck, StemKind::cifar, {3, 4, 6, 3}, 64}},
      // He et al. 2016, section 4.2: 6n+2 layers, n blocks per stage, option-A shortcuts.
      {"resnet8", {BlockKind::basic, StemKind::cifar, {1, 1, 1}, 16, kA}},
      {"resnet20", {BlockKind::basic, StemKind::cifar, {3, 3, 3}, 16, kA}},
      {"resnet32", {BlockKind::basic, StemKind::cifar, {5, 5, 5}, 16, kA}},
      {"resnet44", {BlockKind::basic, StemKind::cifar, {7, 7, 7}, 16, kA}},
      {"resnet56", {BlockKind::basic, StemKind::cifar, {9, 9, 9}, 16, kA}},
  };
  return entries;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, widths] : airbench_widths()) names.push_back(name);
  for (const auto& [name, entry] : zoo()) names.push_back(name);
  return names;
}

bool is_airbench(const std::string& arch) { return airbench_widths().count(arch) > 0; }

bool has_residual_blocks(const std::string& arch) { return zoo().count(arch) > 0; }

std::string unknown_arch_problem(const std::string& arch) {
  if (is_airbench(arch) || zoo().count(arch) > 0) return "";
  return fmt::format("unknown model '{}' (known: {})", arch, fmt::join(model_names(), ", "));
}

bool uses_bottleneck_blocks(const std::string& arch) {
  auto it = zoo().find(arch);
  return it != zoo().end() && it->second.block == BlockKind::bottleneck;
}

namespace {

const ZooEntry& zoo_entry(const std::string& arch) {
  auto it = zoo().find(arch);
  if (it == zoo().end()) {
    const std::string unknown = unknown_arch_problem(arch);
    throw UsageError(unknown.empty() ? arch + " is not a ResNet of the zoo" : unknown);
  }
  return it->second;
}

}  // namespace

ShortcutKind parse_shortcut(const std::string& text) {
  if (text == "A") return ShortcutKind::A;
  if (text == "B") return ShortcutKind::B;
  if (text == "auto") return ShortcutKind::arch_default;
  throw UsageError("option --shortcut: '" + text + "' is not A, B or auto");
}

std::string shortcut_name(ShortcutKind kind) {
  switch (kind) {
    case ShortcutKind::A: return "A";
    case ShortcutKind::B: return "B";
    case ShortcutKind::arch_default: break;
  }
  return "auto";
}

ShortcutKind resolve_shortcut(const std::string& arch, ShortcutKind kind) {
  if (is_airbench(arch)) {  // no residual blocks: only "auto" means anything
    if (kind != ShortcutKind::arch_default)
      throw UsageError("option --shortcut: " + arch + " has no shortcuts; leave it at auto");
    return kind;
  }
  const ZooEntry& z = zoo_entry(arch);
  if (kind == ShortcutKind::arch_default) return z.default_shortcut;
  if (kind == ShortcutKind::A && z.default_shortcut != ShortcutKind::A)
    throw UsageError("option --shortcut: A (He et al.'s parameter-free shortcut) exists for "
                     "resnet8/20/32/44/56 only; " + arch + " has torchvision's projections (B)");
  return kind;
}

std::string input_size_problem(const std::string& arch, int64_t h, int64_t w) {
  if (!is_airbench(arch)) return "";
  // The whitening conv (2x2, valid) takes a pixel off; each block's pool halves, rounding down.
  auto last_map = [](int64_t side) { return (side - 1) / 2 / 2 / 2; };
  const auto fits = [&](int64_t side) {
    return side >= 2 && last_map(side) >= 3 && last_map(side) <= 5;
  };
  if (fits(h) && fits(w)) return "";
  return fmt::format(
      "{} needs images of 25 to 48 pixels a side (its last 3x3 pool must see a "
      "3x3 to 5x5 map), not {}x{}",
      arch, h, w);
}

std::unique_ptr<Model> make_model(const ModelSpec& requested, Backend& backend) {
  ModelSpec spec = requested;
  spec.shortcut = resolve_shortcut(spec.arch, spec.shortcut);  // also refuses an unknown arch
  if (spec.num_classes < 1) throw UsageError("model num_classes must be >= 1");
  if (spec.in_channels < 1) throw UsageError("model in_channels must be >= 1");
  if (spec.base_width < 0) throw UsageError("model base_width must be >= 0");
  if (is_airbench(spec.arch)) {
    if (spec.base_width != 0 || spec.zero_init_residual)
      throw UsageError(spec.arch + " takes neither a base width nor zero_init_residual");
    AirbenchLayout layout;
    layout.widths = airbench_widths().at(spec.arch);
    return std::make_unique<Airbench>(spec, layout, backend);
  }
  const ZooEntry& z = zoo_entry(spec.arch);
  ResNetLayout layout{z.block, z.stem, z.blocks_per_stage, {}, spec.shortcut};
  int64_t width = spec.base_width > 0 ? spec.base_width : z.default_width;
  for (size_t i = 0; i < z.blocks_per_stage.size(); ++i) layout.stage_widths.push_back(width << i);
  return std::make_unique<ResNet>(spec, layout, backend);
}

}  // namespace dp::nn
