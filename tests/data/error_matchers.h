// `message_of<E>(f)`: runs f, expects it to throw E, returns the message (test fails otherwise).
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace dp::data::testing {

template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

}  // namespace dp::data::testing

#define EXPECT_THROW_WITH(stmt, type, substring)                                   \
  do {                                                                             \
    std::string dp_msg_ = ::dp::data::testing::message_of<type>([&] { stmt; });    \
    EXPECT_NE(dp_msg_.find(substring), std::string::npos)                          \
        << "message '" << dp_msg_ << "' does not contain '" << (substring) << "'"; \
  } while (0)
