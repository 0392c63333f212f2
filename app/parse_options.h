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

namespace detail {

// Stores what `parse` gives into `vm`, or prints `usage` and `desc` and returns false for --help.
template <class Parse>
bool store_unless_help(const Parse& parse, const boost::program_options::options_description& desc,
                       const std::string& usage, boost::program_options::variables_map& vm) {
  namespace po = boost::program_options;
  try {
    po::store(parse(), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return true;
}

}  // namespace detail

// Returns false when --help was printed. `given`, when asked for, receives the names of the
// options the command line set (not those left at their defaults); `effective` every option's
// value as text (effective_options).
inline bool parse_options(const std::vector<std::string>& args,
                          const boost::program_options::options_description& desc,
                          const std::string& usage, std::set<std::string>* given = nullptr,
                          std::map<std::string, std::string>* effective = nullptr) {
  boost::program_options::variables_map vm;
  if (!detail::store_unless_help([&] { return parse_command_line(args, desc); }, desc, usage, vm))
    return false;
  if (given) *given = given_options(vm);
  if (effective) *effective = effective_options(vm);
  return true;
}

// The same for a command whose words that are no option fill `positional`'s options (the files
// of `inspect FILE`, `verify FILE...`).
inline bool parse_options(
    const std::vector<std::string>& args, const boost::program_options::options_description& desc,
    const std::string& usage,
    const boost::program_options::positional_options_description& positional) {
  namespace po = boost::program_options;
  po::variables_map vm;
  return detail::store_unless_help(
      [&] {
        return po::command_line_parser(args)
            .options(desc)
            .positional(positional)
            .style(exact_option_style())
            .run();
      },
      desc, usage, vm);
}

}  // namespace dp
