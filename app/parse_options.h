// Shared command-line parsing for the small subcommands: Boost.Program_options errors become
// UsageError (exit code 2) naming the option, as does a stray word; --help prints the
// description.
#pragma once

#include <boost/program_options.hpp>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "train/command_line.h"

namespace dp {

// Returns false when --help was printed. `given`, when asked for, receives the names of the
// options the command line set (not those left at their defaults); `effective` every option's
// value as text (effective_options).
inline bool parse_options(const std::vector<std::string>& args,
                          const boost::program_options::options_description& desc,
                          const std::string& usage, std::set<std::string>* given = nullptr,
                          std::map<std::string, std::string>* effective = nullptr) {
  namespace po = boost::program_options;
  po::variables_map vm;
  try {
    po::store(parse_command_line(args, desc), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  if (given) *given = given_options(vm);
  if (effective) *effective = effective_options(vm);
  return true;
}

}  // namespace dp
