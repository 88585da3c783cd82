// Matching kith::Error in tests by its kind (a typed reason), never by the words of its message.
//
//   CHECK(errorKindOf([&] { (void)openKeyFile(bad, std::nullopt); }) == ErrorKind::CORRUPT);
//   Error e = errorOf([&] { home.create(); });  // fails the test unless it throws a kith::Error
#pragma once
#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>

#include "base/error.h"

namespace kith::test {

// The kith::Error that `f` throws; fails the test when it throws none. Any other exception
// escapes (and fails the test with its own message).
template <typename F>
Error errorOf(F&& f) {
  try {
    f();
  } catch (const Error& e) { return e; }
  FAIL("expected a kith::Error");
  throw std::logic_error("unreachable");
}

// The kind of kith::Error that `f` throws; nullopt when it throws nothing.
template <typename F>
std::optional<ErrorKind> errorKindOf(F&& f) {
  try {
    f();
  } catch (const Error& e) { return e.kind(); }
  return std::nullopt;
}

// The enumerator's name ("NOT_FOUND"), for messages and comparisons that print well.
const char* kindName(ErrorKind kind);

}  // namespace kith::test

// Catch prints an ErrorKind by its name in a failed CHECK.
namespace Catch {
template <>
struct StringMaker<kith::ErrorKind> {
  static std::string convert(kith::ErrorKind kind) { return kith::test::kindName(kind); }
};
}  // namespace Catch
