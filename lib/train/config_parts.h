// Internal to parse_train_config (config.cpp): the option tables (config_options.cpp) and the
// validation of the parsed values (config_validation.cpp).
#pragma once

#include <boost/program_options.hpp>
#include <string>

#include "train/config.h"

namespace dp {

// The options whose text is parsed after the others are read: --lr-milestones and
// --lr-points, and --onecycle-anneal, parsed only where the run's schedule is onecycle (a
// config file's value for a schedule the command line replaced stays unused).
struct LateParsedOptions {
  std::string milestones, points, anneal;
};

// Every `dptrain train` option, bound to `c` or `late`.
boost::program_options::options_description describe_train_options(TrainConfig& c,
                                                                   LateParsedOptions& late);

// Throws UsageError naming the first option out of range or in a combination refused.
void validate_train_config(const TrainConfig& c);

}  // namespace dp
