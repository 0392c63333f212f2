// The command line of a dptrain subcommand, parsed by Boost.Program_options with nothing left
// aside: Boost passes over a word that is not an option (a shell glob's second file after
// --checkpoint, a stray value) without a word, so the run would silently use the first only.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace dp {

// Throws UsageError naming the first word that is no option nor an option's value.
inline boost::program_options::parsed_options parse_command_line(
    const std::vector<std::string>& args, const boost::program_options::options_description& desc) {
  namespace po = boost::program_options;
  po::parsed_options parsed = po::command_line_parser(args).options(desc).run();
  for (const po::option& option : parsed.options)
    if (option.string_key.empty() && !option.value.empty())
      throw UsageError(
          fmt::format("unexpected argument '{}': not an option, nor the value of "
                      "one (each option takes one value: --name VALUE)",
                      option.value.front()));
  return parsed;
}

}  // namespace dp
