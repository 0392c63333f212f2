// The cores this process may run on: its affinity mask, which a launcher or Slurm may have
// bound to fewer than the node has.
#pragma once

#include <vector>

namespace dp {

// The cores in this process's affinity mask, in increasing order (empty if it cannot be read).
std::vector<int> allowed_cores();

// How many of them there are; where the mask cannot be read, the node's hardware threads.
int usable_cores();

}  // namespace dp
