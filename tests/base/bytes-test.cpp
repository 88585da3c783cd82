// The byte helpers: hex as shown to people, and the big-endian integers used in LMDB keys.
#include <catch2/catch.hpp>

#include <string>

#include "base/bytes.h"

namespace {
using namespace kith;
}  // namespace

TEST_CASE("toHex writes lowercase hex, two digits a byte", "[crypto][bytes]") {
  CHECK(toHex(ByteView{}) == "");
  CHECK(toHex(Bytes{0x00}) == "00");
  CHECK(toHex(Bytes{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xff}) == "0123456789abcdefff");
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  std::string hex = toHex(all);
  REQUIRE(hex.size() == 512);
  CHECK(hex.substr(0, 8) == "00010203");
  CHECK(hex.substr(504) == "fcfdfeff");
  CHECK(tryFromHex(hex) == all);
}

TEST_CASE("tryFromHex accepts either case and refuses anything else", "[crypto][bytes]") {
  CHECK(tryFromHex("") == Bytes{});
  CHECK(tryFromHex("00ff") == Bytes{0x00, 0xff});
  CHECK(tryFromHex("ABcdEF") == Bytes{0xab, 0xcd, 0xef});
  CHECK_FALSE(tryFromHex("0").has_value());    // odd length
  CHECK_FALSE(tryFromHex("abc").has_value());  // odd length
  CHECK_FALSE(tryFromHex("0g").has_value());   // not a hex digit
  CHECK_FALSE(tryFromHex("g0").has_value());
  CHECK_FALSE(tryFromHex(" 00").has_value());  // no whitespace
  CHECK_FALSE(tryFromHex("00 ").has_value());
  CHECK_FALSE(tryFromHex("0x00").has_value());  // no prefix
  CHECK_FALSE(tryFromHex("+1").has_value());
  CHECK_FALSE(tryFromHex(std::string("0\0", 2)).has_value());
  // The characters either side of each digit range.
  for (char c : {'/', ':', '@', 'G', '`', 'g'}) {
    INFO("character " << c);
    CHECK_FALSE(tryFromHex(std::string{'0', c}).has_value());
  }
}

TEST_CASE("tryKey32FromHex takes exactly 64 hex digits", "[crypto][bytes]") {
  const std::string hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  auto key = tryKey32FromHex(hex);
  REQUIRE(key.has_value());
  for (size_t i = 0; i < key->size(); ++i) CHECK((*key)[i] == i);
  CHECK(toHex(*key) == hex);
  CHECK_FALSE(tryKey32FromHex(hex.substr(2)).has_value());
  CHECK_FALSE(tryKey32FromHex(hex + "00").has_value());
  CHECK_FALSE(tryKey32FromHex(hex.substr(1) + "z").has_value());
  CHECK_FALSE(tryKey32FromHex("").has_value());
}

TEST_CASE("big-endian integers keep numeric order as byte order", "[crypto][bytes]") {
  Bytes out;
  putU64(out, 0x0102030405060708ull);
  putU32(out, 0xa0b0c0d0u);
  CHECK(toHex(out) == "0102030405060708a0b0c0d0");
  CHECK(getU64(out.data()) == 0x0102030405060708ull);
  CHECK(getU32(out.data() + 8) == 0xa0b0c0d0u);

  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256}, ~uint64_t{0}}) {
    Bytes b;
    putU64(b, v);
    REQUIRE(b.size() == 8);
    CHECK(getU64(b.data()) == v);
  }
  Bytes small, large;
  putU64(small, 255);
  putU64(large, 256);
  CHECK(small < large);  // lexicographic byte order
  Bytes u32;
  putU32(u32, 0xffffffffu);
  CHECK(getU32(u32.data()) == 0xffffffffu);
}
