// `dptrain train`'s command line and config file to a TrainConfig: parsing (the tables in
// config_options.cpp, the checks in config_validation.cpp), the step schedule's default
// milestones, the refusal of options another schedule reads, and the effective values
// metrics.h5 records.
#include "train/config.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>
#include <iostream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "train/command_line.h"
#include "train/config_parts.h"
#include "train/config_text.h"
#include "train/schedule_options.h"

namespace po = boost::program_options;

namespace dp {

namespace {

// The items between commas, an empty one wherever two commas meet or one ends the text
// (std::getline drops a trailing one): "30,60," is a typo to refuse, not the list 30,60.
std::vector<std::string> comma_separated(const std::string& text) {
  std::vector<std::string> items;
  size_t begin = 0;
  for (size_t comma = text.find(','); comma != std::string::npos; comma = text.find(',', begin)) {
    items.push_back(text.substr(begin, comma - begin));
    begin = comma + 1;
  }
  items.push_back(text.substr(begin));
  return items;
}

// "f:v,f:v,..." -> (f, v) pairs; UsageError naming --lr-points otherwise.
std::vector<std::pair<double, double>> parse_points(const std::string& text) {
  std::vector<std::pair<double, double>> points;
  for (const std::string& item : comma_separated(text)) {
    const size_t colon = item.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument(item);
      size_t used_f = 0, used_v = 0;
      const double f = std::stod(item.substr(0, colon), &used_f);
      const double v = std::stod(item.substr(colon + 1), &used_v);
      if (used_f != colon || used_v != item.size() - colon - 1) throw std::invalid_argument(item);
      points.emplace_back(f, v);
    } catch (const std::exception&) {
      throw UsageError(fmt::format("option --lr-points: '{}' is not FRACTION:FACTOR", item));
    }
  }
  return points;
}

std::vector<double> parse_milestones(const std::string& text) {
  std::vector<double> values;
  for (const std::string& item : comma_separated(text)) {
    try {
      size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw UsageError(fmt::format("option --lr-milestones: '{}' is not a number", item));
    }
  }
  return values;
}

// 50% and 75% of the run; whole epochs (rounded) when the schedule steps per epoch, where a
// milestone that rounds to 0 or to the end is dropped.
std::vector<double> default_milestones(double epochs, bool whole) {
  std::vector<double> milestones;
  for (double m : {epochs * 0.5, epochs * 0.75}) {
    if (whole) m = std::round(m);
    if (m > 0 && m < epochs && (milestones.empty() || m > milestones.back()))
      milestones.push_back(m);
  }
  return milestones;
}
}  // namespace

FreezeSpec parse_freeze(const std::string& value) {
  FreezeSpec spec;
  spec.pattern = value;
  const size_t colon = value.rfind(':');
  if (colon != std::string::npos) {
    spec.pattern = value.substr(0, colon);
    const std::string epochs = value.substr(colon + 1);
    const char* end = epochs.data() + epochs.size();
    const auto [stop, error] = std::from_chars(epochs.data(), end, spec.after_epochs);
    if (epochs.empty() || epochs.find_first_not_of("0123456789") != std::string::npos ||
        error != std::errc() || stop != end)  // digits only, in range
      throw UsageError(fmt::format("option --freeze: '{}' is not PATTERN[:EPOCHS]", value));
  }
  if (spec.pattern.empty())
    throw UsageError(fmt::format("option --freeze: '{}' has an empty pattern", value));
  return spec;
}

namespace {

// Options that one schedule alone reads: given beside another they would go unused, so they
// are refused where the user put them beside it (on the command line, or in a config file
// whose --lr-schedule the command line left alone; a config file's options for the schedule
// that the command line replaced are left unused, as that replacement asks).
void refuse_unread_schedule_options(const TrainConfig& c, const po::variables_map& vm,
                                    const std::set<std::string>& on_command_line) {
  const bool schedule_on_command_line = on_command_line.count("lr-schedule") > 0;
  for (const ScheduleOption& o : schedule_options()) {
    if (!o.read_by || c.lr_schedule == *o.read_by || !vm.count(o.option) ||
        vm[o.option].defaulted())
      continue;
    if (on_command_line.count(o.option) || !schedule_on_command_line)
      throw UsageError(fmt::format("option --{}: is read only by --lr-schedule {}, not {}",
                                   o.option, enum_name(*o.read_by), enum_name(c.lr_schedule)));
  }
}

// Stores the command line, then the --config file's options the command line left unset, into
// `vm`, and notifies. `on_command_line` receives the options the command line gave. Returns
// false when --help was printed.
bool store_train_options(const std::vector<std::string>& args,
                         const po::options_description& options, po::variables_map& vm,
                         std::set<std::string>& on_command_line) {
  try {
    po::store(parse_command_line(args, options), vm);
    on_command_line = given_options(vm);
    if (vm.count("help")) {
      std::cout << "usage: dptrain train --data FILE [options]\n" << options << "\n";
      return false;
    }
    if (vm.count("config")) {
      const std::string& file = vm["config"].as<std::string>();
      // Read whole (a config file is small) so that a UTF-8 byte order mark, which Windows
      // editors put first, can go: Boost would read it as part of the first option's name.
      std::string text = read_config_text(file);
      if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
      // Boost's messages quote the line as a C string, which a NUL would cut short.
      if (const size_t nul = text.find('\0'); nul != std::string::npos)
        throw UsageError(fmt::format("{}: line {} holds a NUL byte: not a text file", file,
                                     1 + std::count(text.begin(), text.begin() + nul, '\n')));
      std::istringstream text_stream(text);
      try {
        const po::parsed_options parsed = po::parse_config_file(text_stream, options);
        // Neither is followed (the command line's --config is the one file; help is a
        // command-line request), and never silently.
        for (const po::option& option : parsed.options) {
          if (option.string_key == "config")
            throw UsageError(fmt::format(
                "{}: 'config' names another config file, which is not read; copy its lines "
                "into this one",
                file));
          if (option.string_key == "help")
            throw UsageError(fmt::format("{}: 'help' is for the command line (--help)", file));
        }
        po::store(parsed, vm);
      } catch (const po::error& e) {
        throw UsageError(fmt::format("{}: {}", file, e.what()));
      }
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return true;
}

// The options whose parsing needs others' values, and the step schedule's default milestones.
void apply_late_options(const LateParsedOptions& late, TrainConfig& config) {
  if (!late.milestones.empty()) config.lr_milestones = parse_milestones(late.milestones);
  if (!late.points.empty()) config.lr_points = parse_points(late.points);
  if (config.lr_schedule == optim::LrScheduleKind::onecycle)
    config.onecycle_anneal = parse_enum_option<optim::Anneal>("onecycle-anneal", late.anneal);
  // The step schedule's default milestones: 50% and 75% of --epochs as given, fractional where
  // that is not whole (7.5 of 10); stepped per epoch, of the ceil(E) epochs the schedule spans,
  // rounded to whole epochs (7.5 to 8) and dropped where they round to 0 or to the end (a
  // 1-epoch run then has none and stays constant). The run logs them.
  const bool per_epoch = config.lr_step_unit == optim::StepUnit::epoch;  // whole epochs then
  if (config.lr_milestones.empty() && config.lr_schedule == optim::LrScheduleKind::step)
    config.lr_milestones = default_milestones(
        per_epoch || config.epochs_fraction == 0 ? config.epochs : config.epochs_fraction,
        per_epoch);
}

// Every option's effective value as text (the ranks compare them; metrics.h5 records them),
// the late-parsed ones as the run uses them.
void record_effective_options(const po::variables_map& vm, const po::options_description& options,
                              const LateParsedOptions& late, TrainConfig& config) {
  config.effective = effective_options(vm);
  config.effective["lr-milestones"] = fmt::format("{}", fmt::join(config.lr_milestones, ","));
  if (!config.lr_points.empty()) config.effective["lr-points"] = late.points;
  // Every option has its attribute: one without a default, not given, is empty.
  for (const auto& option : options.options())
    if (const std::string& name = option->long_name(); name != "help")
      config.effective.try_emplace(name, "");
}

}  // namespace

bool parse_train_config(const std::vector<std::string>& args, TrainConfig& config) {
  LateParsedOptions late;
  po::options_description options = describe_train_options(config, late);
  po::variables_map vm;
  std::set<std::string> on_command_line;
  if (!store_train_options(args, options, vm, on_command_line)) return false;
  apply_late_options(late, config);
  validate_train_config(config);
  refuse_unread_schedule_options(config, vm, on_command_line);
  record_effective_options(vm, options, late, config);
  return true;
}

}  // namespace dp
