// Short invite codes (protocol/invite.h, specs/invite.md "Short codes"): at most 24 characters,
// a round trip of every field, the leniency of the long code (case, separators, o/0, i/l/1), and
// every single-letter typo and every swap of neighbouring letters caught as mistyped (so that a
// typo never costs one of the invite's tries).
#include <catch2/catch.hpp>

#include <random>

#include "base/error.h"
#include "protocol/invite.h"
#include "tests/support/seed.h"

namespace {

using namespace kith;
using namespace kith::protocol;

constexpr std::string_view ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford's base32

ShortInviteCode sample(uint8_t slot = 7, Bytes password = {0xde, 0xad, 0xbe, 0xef}) {
  return ShortInviteCode{"192.0.2.7", 7400, slot, std::move(password)};
}

bool decodes(const std::string& text) {
  try {
    (void)decodeShortInvite(text);
    return true;
  } catch (const Error& e) {
    REQUIRE(e.kind() == ErrorKind::INPUT);
    return false;
  }
}

}  // namespace

TEST_CASE("a short code for one IPv4 address is 24 characters and decodes to what was encoded", "[protocol][invite]") {
  std::mt19937_64 rng(kith::test::testSeed("short invite codes"));
  for (int i = 0; i < 200; ++i) {
    ShortInviteCode code;
    code.host = std::to_string(1 + rng() % 254) + "." + std::to_string(rng() % 256) + "." +
                std::to_string(rng() % 256) + "." + std::to_string(rng() % 256);
    code.port = static_cast<uint16_t>(1 + rng() % 65535);
    code.slot = static_cast<uint8_t>(rng());
    code.password = Bytes(INVITE_SHORT_PASSWORD_BYTES);
    for (auto& b : code.password) b = static_cast<uint8_t>(rng());
    std::string text = encodeShortInvite(code);
    INFO(text);
    REQUIRE(text.size() == 24);
    REQUIRE(isShortInviteText(text));
    ShortInviteCode back = decodeShortInvite(text);
    CHECK(back.host == code.host);
    CHECK(back.port == code.port);
    CHECK(back.slot == code.slot);
    CHECK(back.password == code.password);
  }
}

TEST_CASE("a short code is read in any case, with spaces or without dashes, o as 0 and i, l as 1",
          "[protocol][invite]") {
  std::string text = encodeShortInvite(sample());
  std::string upper, spaced, misread;
  for (char c : text) {
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    spaced.push_back(c == '-' ? ' ' : c);
    misread.push_back(c == '0' ? 'O' : c == '1' ? 'l' : c);
  }
  std::string joined;
  for (char c : text)
    if (c != '-') joined.push_back(c);
  for (const auto& variant : {upper, spaced, misread, joined, "  " + text + "\n"}) {
    INFO(variant);
    CHECK(decodeShortInvite(variant).password == sample().password);
  }
}

TEST_CASE("every single-letter typo and every swap of neighbouring letters of a short code is mistyped",
          "[protocol][invite]") {
  std::mt19937_64 rng(kith::test::testSeed("short invite codes"));
  for (int round = 0; round < 20; ++round) {
    Bytes password(INVITE_SHORT_PASSWORD_BYTES);
    for (auto& b : password) b = static_cast<uint8_t>(rng());
    std::string text = encodeShortInvite(sample(static_cast<uint8_t>(rng()), password));
    INFO(text);
    std::vector<size_t> positions;
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] != '-') positions.push_back(i);
    for (size_t i : positions) {
      for (char c : ALPHABET) {
        if (c == text[i]) continue;
        std::string typo = text;
        typo[i] = c;
        INFO(typo);
        CHECK_FALSE(decodes(typo));
      }
    }
    for (size_t k = 0; k + 1 < positions.size(); ++k) {
      std::string swapped = text;
      std::swap(swapped[positions[k]], swapped[positions[k + 1]]);
      if (swapped == text) continue;
      INFO(swapped);
      CHECK_FALSE(decodes(swapped));
    }
  }
}

TEST_CASE("a short code refuses other lengths, foreign letters, host names and port 0", "[protocol][invite]") {
  std::string text = encodeShortInvite(sample());
  CHECK_FALSE(isShortInviteText(text + "a"));
  CHECK_FALSE(isShortInviteText("kith-" + text));
  CHECK_FALSE(decodes(text.substr(0, 23)));
  std::string foreign = text;
  foreign[0] = 'u';  // not in Crockford's alphabet
  CHECK_FALSE(decodes(foreign));
  ShortInviteCode named = sample();
  named.host = "home.example.org";
  CHECK_THROWS_AS(encodeShortInvite(named), Error);
  ShortInviteCode v6 = sample();
  v6.host = "2001:db8::1";
  CHECK_THROWS_AS(encodeShortInvite(v6), Error);
  ShortInviteCode zeroPort = sample();
  zeroPort.port = 0;
  CHECK_THROWS_AS(encodeShortInvite(zeroPort), Error);
  // The long code is not a short one, and still decodes as before.
  CHECK_FALSE(isShortInviteText("kith-00000-00000"));
}
