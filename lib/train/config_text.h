// Reading a --config file's text: a file, or a pipe (`--config <(sed ... base.cfg)`, where the
// shell's process holds the writing end). A named pipe (mkfifo) may have no writer at all, and
// reading it would then block for ever, deaf to SIGTERM (the preemption handler only records
// it): it must deliver its whole text within kNamedPipeSeconds. A folder or a device is refused.
#pragma once

#include <string>

namespace dp {

inline constexpr int kNamedPipeSeconds = 30;

// The file's bytes; a UsageError naming --config and `file` where it cannot be read.
std::string read_config_text(const std::string& file);

}  // namespace dp
