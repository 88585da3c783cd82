// Fingerprints ("safety numbers"): their shape, determinism, and a value pinned from the algorithm
// (digest = BLAKE2b-256("kith/fingerprint/v1" || 0x00 || key); group g = big-endian
// digest[5g .. 5g+5) mod 100000, zero-padded to five digits), computed with python3's hashlib.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "crypto/fingerprint.h"

namespace {

using namespace kith;
using namespace kith::crypto;

bool hasFingerprintShape(const std::string& f) {
  if (f.size() != 23) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    bool separator = i % 6 == 5;
    if (separator ? f[i] != ' ' : (f[i] < '0' || f[i] > '9')) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("fingerprint is four groups of five digits", "[crypto][fingerprint]") {
  CHECK(hasFingerprintShape("04719 88231 50912 33870"));  // the header's example
  CHECK_FALSE(hasFingerprintShape("04719 88231 50912 3387"));
  CHECK_FALSE(hasFingerprintShape("04719-88231 50912 33870"));
  for (int i = 0; i < 50; ++i) {
    Identity id = Identity::generate();
    std::string f = fingerprint(id.publicKey());
    INFO(f);
    CHECK(hasFingerprintShape(f));
  }
}

TEST_CASE("fingerprint is pinned for fixed keys", "[crypto][fingerprint]") {
  // RFC 8032 TEST 1's public key.
  auto key = tryKey32FromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  REQUIRE(key.has_value());
  CHECK(fingerprint(*key) == "32772 83113 88980 88332");
  // The all-zero key.
  CHECK(fingerprint(PublicKey{}) == "53710 60702 21080 67648");
  // 0x53 then 31 zero bytes: its third group is 855, which must be shown as "00855".
  PublicKey padded{};
  padded[0] = 0x53;
  CHECK(fingerprint(padded) == "31185 65020 00855 43493");
}

TEST_CASE("fingerprint is deterministic and tells keys apart", "[crypto][fingerprint]") {
  Identity a = Identity::generate();
  CHECK(fingerprint(a.publicKey()) == fingerprint(a.publicKey()));
  CHECK(fingerprint(Identity::fromSeed(a.seed()).publicKey()) == fingerprint(a.publicKey()));

  std::set<std::string> seen;
  PublicKey key = a.publicKey();
  seen.insert(fingerprint(key));
  for (size_t bit = 0; bit < key.size() * 8; ++bit) {
    PublicKey other = key;
    other[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    seen.insert(fingerprint(other));
  }
  // 257 keys; a collision among them would be a 2^-50 event, not bad luck.
  CHECK(seen.size() == 257);
}
