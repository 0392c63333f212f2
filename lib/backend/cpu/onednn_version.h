// The oneDNN version as loaded at run time (the shared library may be newer than the headers
// the build saw): the CPU backend's name and the build record print the same text. Compiled
// here, so that a caller outside the backend needs no oneDNN header or link.
#pragma once

#include <string>

namespace dp {

std::string onednn_version();

}  // namespace dp
