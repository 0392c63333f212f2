// A string-valued option's closed set of values as an enum (--comm auto|nccl|mpi, --precision
// fp32|tf32|bf16, ...). The text is parsed once, where the option is read, and every layer
// below compares enums: each value is spelled in one table beside its enum, and a misspelt
// comparison does not compile. An enum declares its table by a function that
// argument-dependent lookup finds, next to the enum:
//   enum class StepUnit { step, epoch };
//   constexpr std::array<NamedValue<StepUnit>, 2> enum_names(StepUnit) {
//     return {{{StepUnit::step, "step"}, {StepUnit::epoch, "epoch"}}};
//   }
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace dp {

template <class E>
struct NamedValue {
  E value;
  std::string_view name;
};

// The value's name in its table.
template <class E>
std::string_view enum_name(E value) {
  for (const auto& [v, name] : enum_names(E{}))
    if (v == value) return name;
  DP_CHECK(false, "enum value {} has no name", static_cast<int>(value));
  return {};
}

template <class E>
std::optional<E> enum_from_name(std::string_view name) {
  for (const auto& [v, n] : enum_names(E{}))
    if (n == name) return v;
  return std::nullopt;
}

// The names as a sentence's list: "auto, nccl or mpi".
template <class E>
std::string enum_choices() {
  const auto names = enum_names(E{});
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " or " : ", ";
    text += names[i].name;
  }
  return text;
}

// The value `text` names, or UsageError "option --OPTION: 'TEXT' must be a, b or c".
template <class E>
E parse_enum_option(std::string_view option, std::string_view text) {
  if (const std::optional<E> value = enum_from_name<E>(text)) return *value;
  throw UsageError(fmt::format("option --{}: '{}' must be {}", option, text, enum_choices<E>()));
}

}  // namespace dp
