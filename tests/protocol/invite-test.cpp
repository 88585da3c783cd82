// Invite codes: encoding and decoding every kind of address, the leniency a person typing a code
// needs (case, spaces, dashes, o/0 and i/l/1), and that every mistake is caught as mistyped rather
// than decoding to another invite: every single-character substitution, truncation, extension,
// a foreign prefix, another version, and random garbage. Codes with a valid checksum but a bad
// layout are built here by hand (the payload, its checksum and base32), so that decodeInvite's own
// checks, not the checksum, are what refuses them.
#include <catch2/catch.hpp>

#include "tests/support/seed.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "crypto/hash.h"
#include "protocol/invite.h"

namespace {

using namespace kith;
using namespace kith::protocol;
using crypto::Identity;
using crypto::PublicKey;

constexpr std::string_view ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford's base32
constexpr size_t CHECKSUM_BYTES = 2;
constexpr size_t ONE_IPV4_CODE_CHARS_MAX = 110;

const Identity& inviter() {
  static const Identity id = Identity::fromSeed(Bytes(crypto::SEED_BYTES, 0x11));
  return id;
}

Bytes secretFrom(uint8_t first) {
  Bytes s(INVITE_SECRET_BYTES);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(first + 37 * i);
  return s;
}

InviteCode codeWith(std::vector<InviteAddress> addresses, uint8_t secretByte = 0x42) {
  InviteCode code;
  code.node = inviter().publicKey();
  code.secret = secretFrom(secretByte);
  code.addresses = std::move(addresses);
  return code;
}

InviteCode oneIpv4(uint8_t secretByte = 0x42) { return codeWith({{"192.0.2.7", 7400}}, secretByte); }

void requireSame(const InviteCode& a, const InviteCode& b) {
  REQUIRE(a.node == b.node);
  REQUIRE(a.secret == b.secret);
  REQUIRE(a.addresses.size() == b.addresses.size());
  for (size_t i = 0; i < a.addresses.size(); ++i) {
    INFO("address " << i);
    REQUIRE(a.addresses[i].host == b.addresses[i].host);
    REQUIRE(a.addresses[i].port == b.addresses[i].port);
  }
}

bool same(const InviteCode& a, const InviteCode& b) {
  if (a.node != b.node || a.secret != b.secret || a.addresses.size() != b.addresses.size()) return false;
  for (size_t i = 0; i < a.addresses.size(); ++i) {
    if (a.addresses[i].host != b.addresses[i].host || a.addresses[i].port != b.addresses[i].port) return false;
  }
  return true;
}

// The message of the Error(INPUT) that decoding `text` gives; fails the test when it decodes or
// throws anything else.
std::string inputErrorOf(std::string_view text) {
  try {
    (void)decodeInvite(text);
  } catch (const Error& e) {
    INFO("message: " << e.what());
    REQUIRE(e.kind() == ErrorKind::INPUT);
    REQUIRE_FALSE(std::string(e.what()).empty());
    REQUIRE_FALSE(e.hint().empty());
    return e.what();
  } catch (const std::exception& e) { FAIL("expected kith::Error(INPUT), got another exception: " << e.what()); }
  FAIL("expected kith::Error(INPUT), but it decoded: " << text);
  return {};
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// The code's symbols: what follows "kith", without the dashes.
std::string symbolsOf(const std::string& code) {
  REQUIRE(code.rfind("kith-", 0) == 0);
  std::string s;
  for (char c : code.substr(4)) {
    if (c != '-') s.push_back(c);
  }
  return s;
}

// An independent base32 (MSB first, zero padding bits), to build codes by hand from a payload.
std::string base32(ByteView bytes) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(ALPHABET[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(ALPHABET[(buffer << (5 - bits)) & 31]);
  return out;
}

Bytes unbase32(std::string_view symbols) {
  Bytes out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : symbols) {
    size_t v = ALPHABET.find(c);
    REQUIRE(v != std::string_view::npos);
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
  }
  return out;
}

// CRC-16/CCITT-FALSE, bit by bit from its definition: the remainder of the payload (with the
// register preset to all ones) divided by x^16 + x^12 + x^5 + 1.
Bytes checksum(ByteView payload) {
  uint32_t crc = 0xffff;
  for (uint8_t byte : payload) {
    for (int bit = 7; bit >= 0; --bit) {
      bool top = ((crc >> 15) & 1) != ((byte >> bit) & 1);
      crc = ((crc << 1) & 0xffff) ^ (top ? 0x1021 : 0);
    }
  }
  return Bytes{static_cast<uint8_t>(crc >> 8), static_cast<uint8_t>(crc)};
}

// A code for `payload` (version byte onwards) with a correct checksum, grouped as encodeInvite does.
std::string codeFor(const Bytes& payload) {
  Bytes all = payload;
  Bytes sum = checksum(payload);
  all.insert(all.end(), sum.begin(), sum.end());
  std::string symbols = base32(all);
  std::string out = "kith";
  for (size_t i = 0; i < symbols.size(); i += 5) out += "-" + symbols.substr(i, 5);
  return out;
}

// The payload of a real code (its bytes without the checksum).
Bytes payloadOf(const std::string& code) {
  Bytes all = unbase32(symbolsOf(code));
  REQUIRE(all.size() > CHECKSUM_BYTES);
  return Bytes(all.begin(), all.end() - static_cast<std::ptrdiff_t>(CHECKSUM_BYTES));
}

// version | node (32) | secret (10) | count | addresses...
Bytes headerPayload(uint8_t version, uint8_t count, const PublicKey& node = inviter().publicKey()) {
  Bytes b{version};
  b.insert(b.end(), node.begin(), node.end());
  Bytes secret = secretFrom(0x42);
  b.insert(b.end(), secret.begin(), secret.end());
  b.push_back(count);
  return b;
}

void appendIpv4(Bytes& b, uint16_t port = 7400) {
  b.insert(b.end(), {4, 192, 0, 2, 7});
  b.push_back(static_cast<uint8_t>(port >> 8));
  b.push_back(static_cast<uint8_t>(port));
}

// A host name of exactly INVITE_HOST_BYTES_MAX bytes in labels of at most 63: 63.63.63.61.
std::string longestHostName(char c) {
  std::string label(INVITE_HOST_LABEL_BYTES_MAX, c);
  std::string name = label + "." + label + "." + label + "." + std::string(61, c);
  REQUIRE(name.size() == INVITE_HOST_BYTES_MAX);
  return name;
}

// A payload with one type-0 address: `host` exactly as given (its length byte is its size, mod
// 256), then port 7400.
Bytes hostPayload(const std::string& host) {
  Bytes b = headerPayload(INVITE_VERSION, 1);
  b.push_back(0);
  b.push_back(static_cast<uint8_t>(host.size()));
  b.insert(b.end(), host.begin(), host.end());
  b.insert(b.end(), {0x1c, 0xe8});
  return b;
}

// Host names the spec forbids, each with what is wrong with it.
struct ForbiddenHost {
  const char* what;
  std::string host;
};
std::vector<ForbiddenHost> forbiddenHosts() {
  std::string label(INVITE_HOST_LABEL_BYTES_MAX, 'h');
  return {
      {"254 bytes", longestHostName('h') + "h"},
      {"255 bytes", longestHostName('h') + "hh"},
      {"a NUL byte", std::string("kith.example.org\0.evil.net", 25)},
      {"a NUL byte at the end", std::string("kith.example.org\0", 17)},
      {"an escape byte", "kith\x1b]0;owned\x07.org"},
      {"a line feed", "kith.example\n.org"},
      {"a DEL byte", "kith\x7f.org"},
      {"a space", "kith example.org"},
      {"an underscore", "kith_node.example.org"},
      {"a colon", "kith.example.org:80"},
      {"a percent sign", "fe80::1%eth0"},
      {"a byte over 0x7f", "k\xc3\xa9th.example.org"},
      {"a leading dot", ".kith.example.org"},
      {"a trailing dot", "kith.example.org."},
      {"two dots in a row", "kith..example.org"},
      {"only a dot", "."},
      {"a 64-byte label", label + "h.example.org"},
      {"a label starting with a hyphen", "-kith.example.org"},
      {"a label ending with a hyphen", "kith-.example.org"},
      {"an all-digit last label (reads as IPv4)", "192.0.2.7"},
      {"one all-digit label (reads as a number)", "2130706433"},
      {"a leading-zero dotted quad", "010.0.2.7"},
  };
}

// Host names at the edges of what the spec allows.
std::vector<std::string> boundaryHosts() {
  return {"a",
          "localhost",
          "kith.example.org",
          "Kith.Example.ORG",  // case is kept
          "my-node-2.example",
          "123.example",  // digits-only labels are fine before the last one
          "host.a1",
          "0x7f",
          std::string(INVITE_HOST_LABEL_BYTES_MAX, 'x') + ".org",
          std::string(INVITE_HOST_LABEL_BYTES_MAX, 'x'),
          longestHostName('h')};
}

// The symbol value a character stands for when typed, or -1 (the rules of the header comment).
int typedValue(char c) {
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c == 'o') c = '0';
  if (c == 'i' || c == 'l') c = '1';
  size_t v = ALPHABET.find(c);
  return v == std::string_view::npos ? -1 : static_cast<int>(v);
}

}  // namespace

// ---- Round trips ------------------------------------------------------------------------------

TEST_CASE("an invite with one IPv4 address round-trips", "[protocol][invite]") {
  InviteCode code = oneIpv4();
  std::string text = encodeInvite(code);
  requireSame(decodeInvite(text), code);
}

TEST_CASE("an invite with one IPv6 address round-trips, in its canonical text form", "[protocol][invite]") {
  for (const char* host :
       {"2001:db8::1", "::1", "fe80::1:2:3:4", "::ffff:192.0.2.1", "2001:db8:85a3:1234:5678:8a2e:370:7334"}) {
    INFO(host);
    InviteCode code = codeWith({{host, 443}});
    requireSame(decodeInvite(encodeInvite(code)), code);
  }
  // A non-canonical spelling is carried as the address, and comes back canonical.
  InviteCode spelled = codeWith({{"2001:DB8:0:0:0:0:0:1", 7400}});
  InviteCode decoded = decodeInvite(encodeInvite(spelled));
  REQUIRE(decoded.addresses.at(0).host == "2001:db8::1");
}

TEST_CASE("an invite with a host name round-trips, up to the longest name", "[protocol][invite]") {
  for (const std::string& host : boundaryHosts()) {
    INFO(host);
    InviteCode code = codeWith({{host, 7400}});
    std::string text = encodeInvite(code);
    requireSame(decodeInvite(text), code);
    // Carried as a name, byte for byte (not turned into a numeric address).
    REQUIRE(payloadOf(text) == hostPayload(host));
    REQUIRE(isInviteHostName(host));
  }
}

TEST_CASE("a checksum-valid code with a host name the spec forbids is mistyped", "[protocol][invite]") {
  for (const ForbiddenHost& f : forbiddenHosts()) {
    INFO(f.what);
    REQUIRE_FALSE(isInviteHostName(f.host));
    std::string error = inputErrorOf(codeFor(hostPayload(f.host)));
    INFO(error);
    REQUIRE(contains(error, "mistyped"));
    REQUIRE(contains(error, "host name"));
  }
  // The same layout with an allowed name decodes: only the name was the problem.
  for (const std::string& host : boundaryHosts()) {
    INFO(host);
    REQUIRE(decodeInvite(codeFor(hostPayload(host))).addresses.at(0).host == host);
  }
}

TEST_CASE("encodeInvite refuses what decodeInvite would refuse with Error(INPUT) and never asserts",
          "[protocol][invite]") {
  std::vector<InviteAddress> refused;
  for (const ForbiddenHost& f : forbiddenHosts()) {
    // A name that is a numeric address is not refused: it is carried as that address.
    if (std::string(f.what).find("reads as IPv4") != std::string::npos) continue;
    refused.push_back({f.host, 7400});
  }
  refused.push_back({"", 7400});
  refused.push_back({std::string(300, 'h'), 7400});
  refused.push_back({"192.0.2.7", 0});
  refused.push_back({"kith.example.org", 0});
  refused.push_back({std::string("192.0.2.7\0", 10), 7400});  // inet_pton would read the part before the NUL
  for (const InviteAddress& a : refused) {
    INFO("host of " << a.host.size() << " bytes: " << a.host << ", port " << a.port);
    REQUIRE(inviteAddressProblem(a).has_value());
    try {
      (void)encodeInvite(codeWith({a}));
      FAIL("encoded");
    } catch (const Error& e) {
      REQUIRE(e.kind() == ErrorKind::INPUT);
      REQUIRE_FALSE(e.hint().empty());
    }
  }
  // Numeric addresses and allowed names have no problem.
  for (const char* host : {"192.0.2.7", "2001:db8::1", "::", "kith.example.org"}) {
    REQUIRE_FALSE(inviteAddressProblem({host, 1}).has_value());
  }
}

TEST_CASE("the decoder quotes a character it does not know without passing control bytes on", "[protocol][invite]") {
  std::string text = encodeInvite(oneIpv4());
  std::string withEscape = text.substr(0, 10) + "\x1b" + text.substr(10);
  std::string error = inputErrorOf(withEscape);
  REQUIRE(contains(error, "0x1b"));
  REQUIRE_FALSE(contains(error, "\x1b"));
  REQUIRE(contains(inputErrorOf(text.substr(0, 10) + "!" + text.substr(10)), "'!'"));
}

TEST_CASE("an invite with several addresses of every kind round-trips, in order", "[protocol][invite]") {
  InviteCode code =
      codeWith({{"192.0.2.7", 7400}, {"2001:db8::7", 7401}, {"home.example.net", 1}, {"10.0.0.1", 65535}});
  REQUIRE(code.addresses.size() == INVITE_ADDRESSES_MAX);
  requireSame(decodeInvite(encodeInvite(code)), code);
}

TEST_CASE("the longest invite (four longest host names) round-trips", "[protocol][invite]") {
  std::vector<InviteAddress> addresses;
  for (char c : {'a', 'b', 'c', 'd'}) addresses.push_back({longestHostName(c), 65535});
  InviteCode code = codeWith(addresses);
  std::string text = encodeInvite(code);
  INFO("length " << text.size());
  requireSame(decodeInvite(text), code);
}

TEST_CASE("every secret round-trips", "[protocol][invite]") {
  for (int first = 0; first < 256; first += 5) {
    InviteCode code = oneIpv4(static_cast<uint8_t>(first));
    requireSame(decodeInvite(encodeInvite(code)), code);
  }
  InviteCode zeros = oneIpv4();
  zeros.secret.assign(INVITE_SECRET_BYTES, 0);
  requireSame(decodeInvite(encodeInvite(zeros)), zeros);
  InviteCode ones = oneIpv4();
  ones.secret.assign(INVITE_SECRET_BYTES, 0xff);
  requireSame(decodeInvite(encodeInvite(ones)), ones);
}

TEST_CASE("an invite code reads kith- and groups of five base32 symbols - one IPv4 address fits 110 characters",
          "[protocol][invite]") {
  std::string text = encodeInvite(oneIpv4());
  std::cout << "invite code for one IPv4 address: " << text.size() << " characters: " << text << "\n";
  REQUIRE(text.size() <= ONE_IPV4_CODE_CHARS_MAX);
  REQUIRE(text.rfind("kith-", 0) == 0);
  std::string groups = text.substr(5);
  size_t start = 0;
  while (start < groups.size()) {
    size_t dash = groups.find('-', start);
    std::string group = groups.substr(start, dash == std::string::npos ? std::string::npos : dash - start);
    INFO("group '" << group << "'");
    REQUIRE_FALSE(group.empty());
    REQUIRE(group.size() <= 5);
    if (dash != std::string::npos) REQUIRE(group.size() == 5);
    for (char c : group) REQUIRE(ALPHABET.find(c) != std::string_view::npos);
    if (dash == std::string::npos) break;
    start = dash + 1;
  }
  // The code is the payload and its checksum in base32, nothing else: the layout is as specified.
  Bytes payload = payloadOf(text);
  Bytes expected = headerPayload(INVITE_VERSION, 1);
  appendIpv4(expected);
  REQUIRE(payload == expected);
  REQUIRE(codeFor(payload) == text);
}

TEST_CASE("the checksum is CRC-16/CCITT-FALSE of the payload, appended big-endian", "[protocol][invite]") {
  // The catalogue's check value: CRC-16/CCITT-FALSE("123456789") = 0x29b1.
  REQUIRE(checksum(asBytes("123456789")) == Bytes{0x29, 0xb1});
  Bytes all = unbase32(symbolsOf(encodeInvite(oneIpv4())));
  Bytes payload(all.begin(), all.end() - CHECKSUM_BYTES);
  REQUIRE(Bytes(all.end() - CHECKSUM_BYTES, all.end()) == checksum(payload));
}

TEST_CASE("inviteId is BLAKE2b-256(\"kith/invite/v1\", secret) and differs per secret", "[protocol][invite]") {
  Bytes secret = secretFrom(1);
  REQUIRE(inviteId(secret) == crypto::hash("kith/invite/v1", {secret}));
  REQUIRE(inviteId(secret) != inviteId(secretFrom(2)));
  REQUIRE(inviteId(secret) != crypto::hash("kith/invite-check/v1", {secret}));
}

// ---- What people do when they type a code ------------------------------------------------------

TEST_CASE("decoding ignores case, in the prefix too", "[protocol][invite]") {
  InviteCode code = oneIpv4();
  std::string text = encodeInvite(code);
  std::string upper = text;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  requireSame(decodeInvite(upper), code);
  std::string mixed = text;
  for (size_t i = 0; i < mixed.size(); i += 2)
    mixed[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(mixed[i])));
  requireSame(decodeInvite(mixed), code);
  for (const char* prefix : {"Kith", "KITH", "kITH", "KiTh"}) {
    INFO(prefix);
    requireSame(decodeInvite(prefix + text.substr(4)), code);
  }
}

TEST_CASE("decoding ignores spaces, tabs, line breaks and dashes anywhere", "[protocol][invite]") {
  InviteCode code = oneIpv4();
  std::string text = encodeInvite(code);
  std::string noDashes = text;
  noDashes.erase(std::remove(noDashes.begin(), noDashes.end(), '-'), noDashes.end());
  requireSame(decodeInvite(noDashes), code);
  std::string spaced = text;
  std::replace(spaced.begin(), spaced.end(), '-', ' ');
  requireSame(decodeInvite(spaced), code);
  // As pasted from a mail that wrapped the line, with stray separators.
  std::string wrapped = "  " + text.substr(0, 30) + "\r\n" + text.substr(30, 17) + " -- \t" + text.substr(47) + "\n";
  requireSame(decodeInvite(wrapped), code);
  std::string everywhere;
  for (char c : noDashes) everywhere += std::string(1, c) + " -";
  requireSame(decodeInvite(everywhere), code);
}

TEST_CASE("decoding reads o as 0, and i and l as 1, in either case", "[protocol][invite]") {
  // A code with both a 0 and a 1 among its symbols (the secret is chosen until it has).
  InviteCode code;
  std::string text;
  for (int b = 0;; ++b) {
    REQUIRE(b < 256);
    code = oneIpv4(static_cast<uint8_t>(b));
    text = encodeInvite(code);
    std::string symbols = symbolsOf(text);
    if (symbols.find('0') != std::string::npos && symbols.find('1') != std::string::npos) break;
  }
  for (const auto& [zero, one] : std::vector<std::pair<char, char>>{{'o', 'i'}, {'O', 'I'}, {'o', 'l'}, {'O', 'L'}}) {
    std::string typed = "kith" + text.substr(4);
    size_t changed = 0;
    for (size_t i = 4; i < typed.size(); ++i) {
      if (typed[i] == '0') typed[i] = zero, ++changed;
      if (typed[i] == '1') typed[i] = one, ++changed;
    }
    INFO(typed);
    REQUIRE(changed >= 2);
    requireSame(decodeInvite(typed), code);
  }
}

// ---- Mistakes are caught ------------------------------------------------------------------------

TEST_CASE("every single-character substitution is mistyped, or the same code (o/0, i/1, l/1, case)",
          "[protocol][invite]") {
  const uint64_t seed = kith::test::testSeed("invite-test");
  std::cout << "invite substitutions: seed " << seed << " (KITH_TEST_SEED=" << seed << " repeats it)\n";
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  // Every character one might type by mistake: the alphabet, the aliases, Crockford's excluded u,
  // upper case, and a few that are not letters of the code at all.
  std::string candidates = std::string(ALPHABET) + "oiluOILUABZ!_.#*é";
  std::vector<InviteCode> codes = {oneIpv4(), codeWith({{"2001:db8::1", 7400}, {"kith.example.org", 7401}})};
  for (int i = 0; i < 6; ++i) {
    InviteCode c = oneIpv4();
    for (auto& b : c.secret) b = static_cast<uint8_t>(rng());
    c.addresses[0].port = static_cast<uint16_t>(1 + rng() % 65535);
    codes.push_back(c);
  }
  size_t rejected = 0, aliases = 0;
  for (const InviteCode& code : codes) {
    std::string text = encodeInvite(code);
    for (size_t pos = 0; pos < text.size(); ++pos) {
      if (text[pos] == '-') continue;  // separators: see the spaces-and-dashes test
      for (char c : candidates) {
        if (c == text[pos]) continue;
        std::string typo = text;
        typo[pos] = c;
        INFO("code " << text << "\ntypo " << typo);
        try {
          InviteCode decoded = decodeInvite(typo);
          // Only a character that stands for the same symbol (or, in the prefix, the same letter)
          // may decode, and to the same invite.
          if (pos < 4) {
            REQUIRE(std::tolower(static_cast<unsigned char>(c)) == text[pos]);
          } else {
            REQUIRE(typedValue(c) == typedValue(text[pos]));
          }
          REQUIRE(same(decoded, code));
          ++aliases;
        } catch (const Error& e) {
          REQUIRE(e.kind() == ErrorKind::INPUT);
          REQUIRE((pos < 4 ? contains(e.what(), "not a kith invite") : contains(e.what(), "mistyped")));
          ++rejected;
        }
      }
    }
  }
  std::cout << "invite substitutions: " << rejected << " rejected, " << aliases << " aliases decoded the same\n";
  REQUIRE(aliases > 0);
  REQUIRE(rejected > 1000);
}

TEST_CASE("every swap of two neighbouring letters is mistyped", "[protocol][invite]") {
  size_t swaps = 0;
  for (uint8_t b : {uint8_t{0x42}, uint8_t{0x07}, uint8_t{0xc3}}) {
    std::string text = encodeInvite(codeWith({{"192.0.2.7", 7400}, {"kith.example.org", 7401}}, b));
    std::string symbols = symbolsOf(text);
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      if (symbols[i] == symbols[i + 1]) continue;
      std::string swapped = symbols;
      std::swap(swapped[i], swapped[i + 1]);
      INFO("swap at " << i << ": kith-" << swapped);
      REQUIRE(contains(inputErrorOf("kith-" + swapped), "mistyped"));
      ++swaps;
    }
  }
  REQUIRE(swaps > 300);
}

TEST_CASE("a truncated code is mistyped, never a shorter invite", "[protocol][invite]") {
  std::string text = encodeInvite(codeWith({{"192.0.2.7", 7400}, {"kith.example.org", 7401}}));
  for (size_t len = 5; len < text.size(); ++len) {
    INFO("first " << len << " characters");
    std::string error = inputErrorOf(text.substr(0, len));
    REQUIRE(contains(error, "mistyped"));
  }
  REQUIRE(contains(inputErrorOf("kith-"), "too short"));
  REQUIRE(contains(inputErrorOf(text.substr(0, 20)), "too short"));
  // Truncated before the prefix is complete: not an invite at all.
  for (std::string_view cut : {"", "k", "ki", "kit"}) REQUIRE(contains(inputErrorOf(cut), "not a kith invite"));
}

TEST_CASE("a code with symbols added is mistyped, never the same invite", "[protocol][invite]") {
  std::string text = encodeInvite(oneIpv4());
  for (size_t extra = 1; extra <= 8; ++extra) {
    for (char c : std::string_view("0z7q")) {
      std::string longer = text + std::string(extra, c);
      INFO(longer);
      REQUIRE(contains(inputErrorOf(longer), "mistyped"));
    }
  }
  // A symbol inserted in the middle.
  for (size_t pos = 6; pos < text.size(); pos += 7) {
    std::string inserted = text.substr(0, pos) + "x" + text.substr(pos);
    INFO(inserted);
    REQUIRE(contains(inputErrorOf(inserted), "mistyped"));
  }
  // Far too long: refused before decoding, however it is made.
  std::string huge = text + std::string(INVITE_CODE_CHARS_MAX, '0');
  std::string error = inputErrorOf(huge);
  REQUIRE(contains(error, "too long"));
}

TEST_CASE("a code without the kith prefix is not an invite", "[protocol][invite]") {
  std::string text = encodeInvite(oneIpv4());
  std::string rest = text.substr(4);
  for (const std::string& wrong : {"kiht" + rest, "kit-" + rest, "xith" + rest, rest.substr(1), "k1th" + rest,
                                   "http://" + text, "invite: " + text}) {
    INFO(wrong);
    std::string error = inputErrorOf(wrong);
    REQUIRE(contains(error, "not a kith invite code"));
  }
}

TEST_CASE("a code of another version is refused as such, with a valid checksum", "[protocol][invite]") {
  Bytes payload = payloadOf(encodeInvite(oneIpv4()));
  for (uint8_t version : {uint8_t{0}, uint8_t{3}, uint8_t{31}, uint8_t{255}}) {
    INFO("version " << int(version));
    Bytes other = payload;
    other[0] = version;
    std::string error = inputErrorOf(codeFor(other));
    REQUIRE(contains(error, "another version"));
  }
  // The same payload with the current version decodes: only the version byte was the problem.
  REQUIRE_NOTHROW(decodeInvite(codeFor(payload)));
}

TEST_CASE("a checksum-valid code with a bad layout is mistyped, naming the part", "[protocol][invite]") {
  struct Case {
    const char* name;
    Bytes payload;
    const char* why;
  };
  std::vector<Case> cases;
  cases.push_back({"no address", headerPayload(INVITE_VERSION, 0), "address count"});
  {
    Bytes b = headerPayload(INVITE_VERSION, INVITE_ADDRESSES_MAX + 1);
    for (size_t i = 0; i < INVITE_ADDRESSES_MAX + 1; ++i) appendIpv4(b);
    cases.push_back({"five addresses", b, "address count"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 2);
    appendIpv4(b);
    cases.push_back({"fewer addresses than counted", b, "truncated"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 1);
    b.insert(b.end(), {7, 1, 2, 3, 4, 0x1c, 0xe8});
    cases.push_back({"an unknown address type", b, "address type"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 1);
    b.insert(b.end(), {4, 192, 0, 2});
    cases.push_back({"a cut IPv4 address", b, "truncated"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 1);
    b.push_back(6);
    b.insert(b.end(), 15, 0x20);
    cases.push_back({"a cut IPv6 address", b, "truncated"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 1);
    b.insert(b.end(), {0, 10, 'a', 'b', 'c'});
    cases.push_back({"a host name longer than what follows", b, "truncated"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 1);
    b.insert(b.end(), {0, 0, 0x1c, 0xe8});
    cases.push_back({"an empty host name", b, "empty host name"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 1);
    b.insert(b.end(), {4, 192, 0, 2, 7});
    cases.push_back({"no port", b, "truncated"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 1);
    appendIpv4(b, 0);
    cases.push_back({"port 0", b, "port 0"});
  }
  {
    Bytes b = headerPayload(INVITE_VERSION, 1);
    appendIpv4(b);
    b.push_back(0);
    cases.push_back({"a trailing byte", b, "trailing bytes"});
  }
  {
    // A node key that is not a curve point (the handshake could never authenticate it).
    std::optional<PublicKey> bad;
    for (int v = 0; v < 256 && !bad; ++v) {
      PublicKey k;
      k.fill(static_cast<uint8_t>(v));
      if (!crypto::toBoxPublicKey(k)) bad = k;
    }
    REQUIRE(bad.has_value());
    Bytes b = headerPayload(INVITE_VERSION, 1, *bad);
    appendIpv4(b);
    cases.push_back({"an invalid node key", b, "node key"});
  }
  for (const Case& c : cases) {
    INFO(c.name);
    std::string error = inputErrorOf(codeFor(c.payload));
    INFO(error);
    REQUIRE(contains(error, "mistyped"));
    REQUIRE(contains(error, c.why));
  }
}

TEST_CASE("random garbage and damaged layouts never crash the decoder", "[protocol][invite]") {
  const uint64_t seed = kith::test::testSeed("invite-test");
  std::cout << "invite random inputs: seed " << seed << " (KITH_TEST_SEED=" << seed << " repeats it)\n";
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  auto pick = [&](std::string_view from) { return from[rng() % from.size()]; };
  size_t refused = 0, decoded = 0;
  auto attempt = [&](const std::string& text) {
    InviteCode code;
    try {
      code = decodeInvite(text);
    } catch (const Error& e) {
      INFO(text);
      REQUIRE(e.kind() == ErrorKind::INPUT);
      ++refused;
      return;
    }
    // Whatever decodes must be a well-formed invite...
    REQUIRE(code.secret.size() == INVITE_SECRET_BYTES);
    REQUIRE_FALSE(code.addresses.empty());
    REQUIRE(code.addresses.size() <= INVITE_ADDRESSES_MAX);
    for (const auto& a : code.addresses) REQUIRE(a.port != 0);
    // ... and encode back to the same invite, without throwing.
    std::string again = encodeInvite(code);
    requireSame(decodeInvite(again), code);
    REQUIRE(encodeInvite(decodeInvite(again)) == again);
    ++decoded;
  };
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    size_t len = rng() % 200;
    switch (i % 3) {
      case 0:  // arbitrary bytes, NUL and high bytes included
        for (size_t k = 0; k < len; ++k) text.push_back(static_cast<char>(rng()));
        break;
      case 1:  // looks like a code
        text = "kith-";
        for (size_t k = 0; k < len; ++k) text.push_back(pick("0123456789abcdefghjkmnpqrstvwxyzoilu- "));
        break;
      default:  // a real code, then random edits
        text = encodeInvite(oneIpv4(static_cast<uint8_t>(rng())));
        for (int edits = 1 + static_cast<int>(rng() % 4); edits > 0; --edits) {
          size_t pos = rng() % text.size();
          switch (rng() % 3) {
            case 0:
              text[pos] = static_cast<char>(rng());
              break;
            case 1:
              text.erase(pos, 1 + rng() % 3);
              break;
            default:
              text.insert(pos, 1, pick(ALPHABET));
              break;
          }
          if (text.empty()) break;
        }
    }
    attempt(text);
  }
  // Payloads that pass the checksum, so that the layout checks see every kind of damage.
  Bytes good =
      payloadOf(encodeInvite(codeWith({{"192.0.2.7", 7400}, {"2001:db8::1", 7401}, {"kith.example.org", 7402}})));
  for (int i = 0; i < 3000; ++i) {
    Bytes b = good;
    switch (i % 3) {
      case 0:
        for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips)
          b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
        break;
      case 1:
        b.resize(1 + rng() % b.size());
        break;
      default:
        for (size_t k = 0, n = 1 + rng() % 300; k < n; ++k) b.push_back(static_cast<uint8_t>(rng()));
    }
    if (b.size() > 43) b[0] = INVITE_VERSION;  // get past the version check more often than not
    attempt(codeFor(b));
  }
  std::cout << "invite random inputs: " << refused << " refused, " << decoded << " decoded\n";
  REQUIRE(refused > 5000);
}
