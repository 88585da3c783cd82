#include "tests/support/hex.h"

#include <catch2/catch.hpp>

#include <string>

namespace kith::test {

Bytes unhex(std::string_view hex) {
  auto bytes = tryFromHex(hex);
  INFO("not hex: " << std::string(hex));
  REQUIRE(bytes.has_value());
  return *bytes;
}

}  // namespace kith::test
