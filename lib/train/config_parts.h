// Internal to parse_train_config (config.cpp): the option tables (config_options.cpp) and the
// validation of the parsed values (config_validation.cpp).
#pragma once

#include <boost/program_options.hpp>
#include <string>

#include "train/config.h"

namespace dp {

// Every `dptrain train` option, bound to `c`; --config, --lr-milestones and --lr-points land
// in the strings, parsed after the options are read.
boost::program_options::options_description describe_train_options(TrainConfig& c,
                                                                   std::string& config_file,
                                                                   std::string& milestones,
                                                                   std::string& points);

// Throws UsageError naming the first option out of range or in a combination refused.
void validate_train_config(const TrainConfig& c);

}  // namespace dp
