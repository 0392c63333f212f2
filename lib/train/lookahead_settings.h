// Lookahead's settings as the options give them (--lookahead-every, -base, -power,
// -start-epoch, -each-epoch): held by TrainConfig and by the run identity a checkpoint records
// and a resume compares (train/lookahead_callback.h: what they do).
#pragma once

#include <cstdint>

namespace dp {

struct LookaheadSettings {
  int64_t every = 0;  // every N steps; 0: off
  double base = 0.95, power = 3.0;  // decay base^N (t/T)^power
  // The average starts after start_epoch epochs (0: at the start of training); with each_epoch
  // the weights also become it at every epoch's end (airbench95).
  int64_t start_epoch = 0;
  bool each_epoch = false;
};

}  // namespace dp
