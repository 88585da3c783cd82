// crypto::hash (BLAKE2b-256 over domain || 0x00 || parts) against values computed with python3's
// hashlib.blake2b(digest_size=32), so the construction is pinned independently of libsodium.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "crypto/hash.h"

namespace {

using namespace kith;
using namespace kith::crypto;

}  // namespace

TEST_CASE("hash matches BLAKE2b-256(domain || 0x00 || parts) computed with hashlib", "[crypto][hash]") {
  // python3: hashlib.blake2b(b"kith/test\0" + b"abc" + b"" + b"def", digest_size=32).hexdigest()
  CHECK(toHex(hash("kith/test", {asBytes("abc"), ByteView{}, asBytes("def")})) ==
        "5c8875b6afada39680ddf27cb36ed2b2d6581c7b73c391087c6c1e6631facc64");
  // An empty domain still adds its 0x00: hashlib.blake2b(b"\0", digest_size=32).
  CHECK(toHex(hash("", {})) == "03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314");
  // Unkeyed BLAKE2b-256 of the empty string is well known; hash() never produces it because of the
  // domain separator, which this checks is really there.
  CHECK(toHex(hash("", {})) != "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

TEST_CASE("hash splits parts by concatenation but separates domains", "[crypto][hash]") {
  // Parts are concatenated, so how the bytes are split does not matter ...
  CHECK(hash("d", {asBytes("abcdef")}) == hash("d", {asBytes("abc"), asBytes("def")}));
  CHECK(hash("d", {asBytes("abcdef")}) == hash("d", {asBytes("a"), ByteView{}, asBytes("bcdef")}));
  // ... but the domain's terminating zero keeps "ab" + "c" apart from "a" + "bc".
  CHECK(hash("ab", {asBytes("c")}) != hash("a", {asBytes("bc")}));
  std::set<Key32> seen;
  for (const char* domain : {"kith/entry-id/v1", "kith/journal/v1", "kith/fingerprint/v1", ""}) {
    seen.insert(hash(domain, {asBytes("same input")}));
  }
  CHECK(seen.size() == 4);
  // Deterministic.
  CHECK(hash("kith/test", {asBytes("x")}) == hash("kith/test", {asBytes("x")}));
}
