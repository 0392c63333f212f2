// The command line of a dptrain subcommand, parsed by Boost.Program_options with nothing left
// aside: Boost passes over a word that is not an option (a shell glob's second file after
// --checkpoint, a stray value) without a word, so the run would silently use the first only.
// And the parsed options' values as text, which metrics.h5 records and the ranks compare, and
// the Boost values of an enum option and of an unsigned one.
#pragma once

#include <fmt/ranges.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/option_enum.h"

namespace dp {

// Boost's default command-line style without its guessing, which takes an unknown option for
// the one it begins (--max-steps ran as --max-steps-per-epoch, train's --output as
// --output-dir) without a word: an option is spelt out, as in a --config file.
inline int exact_option_style() {
  namespace style = boost::program_options::command_line_style;
  return style::default_style & ~style::allow_guessing;
}

// Throws UsageError naming the first word that is no option nor an option's value.
inline boost::program_options::parsed_options parse_command_line(
    const std::vector<std::string>& args, const boost::program_options::options_description& desc) {
  namespace po = boost::program_options;
  po::parsed_options parsed =
      po::command_line_parser(args).options(desc).style(exact_option_style()).run();
  for (const po::option& option : parsed.options)
    if (option.string_key.empty() && !option.value.empty())
      throw UsageError(
          fmt::format("unexpected argument '{}': not an option, nor the value of "
                      "one (each option takes one value: --name VALUE)",
                      option.value.front()));
  return parsed;
}

// The value of an enum option (core/option_enum.h) `option` (without "--"), defaulting to
// `target`'s value: Boost holds the text, which metrics.h5 records and the ranks compare, and
// notify() sets `target` from it or throws UsageError naming the option and its values.
template <class E>
boost::program_options::typed_value<std::string>* enum_option(E& target, std::string option) {
  return boost::program_options::value<std::string>()
      ->default_value(std::string(enum_name(target)))
      ->notifier([&target, option = std::move(option)](const std::string& text) {
        target = parse_enum_option<E>(option, text);
      });
}

// An unsigned 64-bit option's value (--seed): Boost would read "-1" into a uint64_t as
// 2^64 - 1 without a word, so the option holds this type, which validate() below reads.
struct WholeNumber {
  uint64_t value = 0;
};

// Boost's hook for reading a WholeNumber (found by argument-dependent lookup): a decimal number
// from 0 to 2^64 - 1, or an error Boost names the option in.
inline void validate(boost::any& out, const std::vector<std::string>& words, WholeNumber*, int) {
  namespace po = boost::program_options;
  po::validators::check_first_occurrence(out);
  const std::string& text = po::validators::get_single_string(words);
  WholeNumber number;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, number.value);
  if (text.empty() || stop != end || error != std::errc()) {
    po::error_with_option_name refusal(fmt::format(
        "option %canonical_option%: '%value%' must be a whole number from 0 to {}", UINT64_MAX));
    refusal.set_substitute("value", text);
    throw refusal;
  }
  out = number;
}

// The Boost value of an unsigned 64-bit option, defaulting to `target`'s value; notify() sets
// `target`.
inline boost::program_options::typed_value<WholeNumber>* unsigned_option(uint64_t& target) {
  return boost::program_options::value<WholeNumber>()
      ->default_value(WholeNumber{target}, std::to_string(target))
      ->notifier([&target](const WholeNumber& number) { target = number.value; });
}

// A bool option's Boost value, its default shown as true or false in --help (Boost prints 1
// or 0), as the README's tables give it; `flag` also lets the bare option mean true.
inline boost::program_options::typed_value<bool>* bool_option(bool& target, bool flag = false) {
  auto* value =
      boost::program_options::value(&target)->default_value(target, target ? "true" : "false");
  return flag ? value->implicit_value(true, "true") : value;
}

// An option's value as text, as metrics.h5 records it and the ranks compare it.
inline std::string option_value_text(const boost::program_options::variable_value& v) {
  const auto& any = v.value();
  if (auto p = boost::any_cast<std::string>(&any)) return *p;
  if (auto p = boost::any_cast<int>(&any)) return std::to_string(*p);
  if (auto p = boost::any_cast<int64_t>(&any)) return std::to_string(*p);
  if (auto p = boost::any_cast<uint64_t>(&any)) return std::to_string(*p);
  if (auto p = boost::any_cast<WholeNumber>(&any)) return std::to_string(p->value);
  if (auto p = boost::any_cast<float>(&any)) return fmt::format("{}", *p);
  if (auto p = boost::any_cast<double>(&any)) return fmt::format("{}", *p);
  if (auto p = boost::any_cast<bool>(&any)) return *p ? "true" : "false";
  if (auto p = boost::any_cast<std::vector<std::string>>(&any))
    return fmt::format("{}", fmt::join(*p, " "));
  return "?";
}

// The options given explicitly (on the command line, or in a config file) rather than defaulted.
inline std::set<std::string> given_options(const boost::program_options::variables_map& vm) {
  std::set<std::string> names;
  for (const auto& [name, value] : vm)
    if (!value.defaulted()) names.insert(name);
  return names;
}

// Every option's effective value (given or default) as text, --help aside.
inline std::map<std::string, std::string> effective_options(
    const boost::program_options::variables_map& vm) {
  std::map<std::string, std::string> effective;
  for (const auto& [name, value] : vm)
    if (name != "help") effective[name] = option_value_text(value);
  return effective;
}

}  // namespace dp
