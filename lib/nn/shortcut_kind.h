// Which shortcut a residual block takes where its shape changes (nn/shortcuts.h), as --shortcut
// names it; apart from the layers, so the options can hold it.
#pragma once

#include <string>

namespace dp::nn {

// He et al.'s names for the two shortcuts of a shape-changing block; arch_default: the arch's own.
enum class ShortcutKind { arch_default, A, B };

// --shortcut's values: "A", "B" (either case) or "auto" (arch_default); UsageError otherwise.
ShortcutKind parse_shortcut(const std::string& text);
// "A", "B" or "auto"; what checkpoints record (resolved: A or B; auto for a network without).
std::string shortcut_name(ShortcutKind kind);

}  // namespace dp::nn
