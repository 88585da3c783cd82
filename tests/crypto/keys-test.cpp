// Identities: Ed25519 against RFC 8032's known answers, the X25519 keys derived from them, and the
// crypto_kdf subkeys. Every expected value below was computed outside libsodium (RFC 8032 itself,
// and python3's `cryptography` and `hashlib` for the derived keys), so these tests pin the formats
// rather than re-run the code under test.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>

#include "base/error.h"
#include "crypto/keys.h"
#include "tests/support/hex.h"

namespace {

using namespace kith;
using namespace kith::crypto;

using kith::test::unhex;

struct Rfc8032Vector {
  const char* name;
  const char* seed;
  const char* publicKey;
  const char* message;
  const char* signature;
  // Not part of RFC 8032: the X25519 key pair libsodium derives (crypto_sign_ed25519_*_to_curve25519),
  // computed with python3 as clamp(SHA-512(seed)[0..32]) and the birational map u = (1 + y) / (1 - y),
  // cross-checked against X25519(secret, 9) from the `cryptography` package.
  const char* boxSecret;
  const char* boxPublicKey;
  // BLAKE2b-256 keyed with the seed, salt = subkey id (u64 little-endian) || 8 zero bytes,
  // personal = context || 8 zero bytes: crypto_kdf_derive_from_key, computed with hashlib.
  const char* kdfStor0;
  const char* kdfStor1;
  const char* kdfTest0;
};

// RFC 8032 section 7.1, TEST 1, TEST 2 and TEST 3.
const Rfc8032Vector RFC8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
     "307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f",
     "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e",
     "cba01b897c9c31bc615f5b27e3fb97ad4bb1ee0479138ba0f773ed26ba478258",
     "38de77c7f2f80c32b271f8f5f798dce1b9f9b9a0f139d1189ca06f2acbb9ac6d",
     "931713d3e8423c96d02d4ebbacc6b2ca749fd86ae28d804c0a22c2459e08a218"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
     "68bd9ed75882d52815a97585caf4790a7f6c6b3b7f821c5e259a24b02e502e51",
     "25c704c594b88afc00a76b69d1ed2b984d7e22550f3ed0802d04fbcd07d38d47",
     "a4e8c10a28d2bce38174cce92f1023a6f3b714bfb289f98c45576db59c3c8cd3",
     "442a0dbe8e942735990af376feb0139c07a312939f845a253c4a26ac7bf4014d",
     "41e55c282b3814aedc0dda7d9cb3f16169c45fea2ae072e2ef5526194f469183"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
     "909a8b755ed902849023a55b15c23d11ba4d7f4ec5c2f51b1325a181991ea95c",
     "cbb22fc9f790bd3eba9b84680c157ca4950a9894362601701f89c3c4d9fda23a",
     "bb87500a686470fa47fd9310de438a6bc3182a15d56bbcc293996089d9206aee",
     "4549d994c0a37aa48e01756fc84101fff1a108d94f98045e331daac368ae0895",
     "dbc1283acf595ee7fb263d60915ff42ae44c6ec46caaee233cc6cc3eb19e4412"},
};

}  // namespace

TEST_CASE("Ed25519 matches RFC 8032 through Identity::fromSeed, sign and verify", "[crypto][keys]") {
  for (const auto& v : RFC8032) {
    INFO("RFC 8032 " << v.name);
    Bytes seed = unhex(v.seed);
    Bytes message = unhex(v.message);
    Identity id = Identity::fromSeed(seed);

    CHECK(toHex(id.publicKey()) == v.publicKey);
    CHECK(toHex(id.seed()) == v.seed);
    // libsodium's 64-byte secret key is seed || public key.
    CHECK(toHex(id.signingSecret()) == std::string(v.seed) + v.publicKey);

    Signature sig = id.sign(message);
    CHECK(toHex(sig) == v.signature);
    CHECK(verify(id.publicKey(), message, sig));
    // The published signature verifies under the published key, independently of our signing.
    auto publishedKey = tryKey32FromHex(v.publicKey);
    REQUIRE(publishedKey.has_value());
    CHECK(verify(*publishedKey, message, unhex(v.signature)));
  }
}

TEST_CASE("verify refuses every single-bit change to the signature, message or key", "[crypto][keys]") {
  const auto& v = RFC8032[2];  // the one with a non-empty message, so the message can be changed
  Identity id = Identity::fromSeed(unhex(v.seed));
  Bytes message = unhex(v.message);
  Signature sig = id.sign(message);
  REQUIRE(verify(id.publicKey(), message, sig));

  for (size_t i = 0; i < sig.size() * 8; ++i) {
    Signature bad = sig;
    bad[i / 8] ^= static_cast<uint8_t>(1u << (i % 8));
    INFO("signature bit " << i);
    CHECK_FALSE(verify(id.publicKey(), message, bad));
  }
  for (size_t i = 0; i < message.size() * 8; ++i) {
    Bytes bad = message;
    bad[i / 8] ^= static_cast<uint8_t>(1u << (i % 8));
    INFO("message bit " << i);
    CHECK_FALSE(verify(id.publicKey(), bad, sig));
  }
  for (size_t i = 0; i < PUBLIC_KEY_BYTES * 8; ++i) {
    PublicKey bad = id.publicKey();
    bad[i / 8] ^= static_cast<uint8_t>(1u << (i % 8));
    INFO("key bit " << i);
    CHECK_FALSE(verify(bad, message, sig));
  }
  // Another identity's key, an appended byte, a truncated message.
  CHECK_FALSE(verify(Identity::fromSeed(unhex(RFC8032[0].seed)).publicKey(), message, sig));
  Bytes longer = message;
  longer.push_back(0);
  CHECK_FALSE(verify(id.publicKey(), longer, sig));
  CHECK_FALSE(verify(id.publicKey(), ByteView(message).first(1), sig));
}

TEST_CASE("verify returns false for malformed signatures and keys, never throws", "[crypto][keys]") {
  Identity id = Identity::fromSeed(unhex(RFC8032[0].seed));
  Bytes message = unhex("00112233");
  Signature sig = id.sign(message);
  ByteView s(sig);

  CHECK_FALSE(verify(id.publicKey(), message, s.first(63)));
  CHECK_FALSE(verify(id.publicKey(), message, ByteView{}));
  Bytes longer(sig.begin(), sig.end());
  longer.push_back(0);
  CHECK_FALSE(verify(id.publicKey(), message, longer));
  CHECK_FALSE(verify(PublicKey{}, message, sig));  // the all-zero key is a small-order point
  Signature zeros{};
  CHECK_FALSE(verify(id.publicKey(), message, zeros));
  Signature ones;
  ones.fill(0xff);
  CHECK_FALSE(verify(id.publicKey(), message, ones));
}

TEST_CASE("the X25519 keys match independently computed values and toBoxPublicKey", "[crypto][keys]") {
  for (const auto& v : RFC8032) {
    INFO("RFC 8032 " << v.name);
    Identity id = Identity::fromSeed(unhex(v.seed));
    CHECK(toHex(id.boxSecret()) == v.boxSecret);
    CHECK(toHex(id.boxPublicKey()) == v.boxPublicKey);
    auto fromPublic = toBoxPublicKey(id.publicKey());
    REQUIRE(fromPublic.has_value());
    CHECK(*fromPublic == id.boxPublicKey());
  }
  for (int i = 0; i < 8; ++i) {
    Identity id = Identity::generate();
    auto fromPublic = toBoxPublicKey(id.publicKey());
    REQUIRE(fromPublic.has_value());
    CHECK(*fromPublic == id.boxPublicKey());
  }
}

TEST_CASE("toBoxPublicKey refuses keys that are not usable curve points", "[crypto][keys]") {
  // y = 0 decodes to a point of order 4; y = 1 is the identity (order 1).
  CHECK_FALSE(toBoxPublicKey(PublicKey{}).has_value());
  PublicKey identityPoint{};
  identityPoint[0] = 1;
  CHECK_FALSE(toBoxPublicKey(identityPoint).has_value());
  // y = 2 has no x on edwards25519: (y^2 - 1) / (d y^2 + 1) is not a square mod p (checked in python3).
  PublicKey notOnCurve{};
  notOnCurve[0] = 2;
  CHECK_FALSE(toBoxPublicKey(notOnCurve).has_value());
}

TEST_CASE("deriveKey is crypto_kdf over the seed: pinned, stable, and distinct per context and subkey",
          "[crypto][keys]") {
  for (const auto& v : RFC8032) {
    INFO("RFC 8032 " << v.name);
    Identity id = Identity::fromSeed(unhex(v.seed));
    SecretBuffer stor0 = id.deriveKey("kithstor", 0);
    REQUIRE(stor0.size() == 32);
    CHECK(toHex(stor0.view()) == v.kdfStor0);
    CHECK(toHex(id.deriveKey("kithstor", 1).view()) == v.kdfStor1);
    CHECK(toHex(id.deriveKey("kithtest", 0).view()) == v.kdfTest0);
    // Stable: again, and from another Identity built from the same seed.
    CHECK(toHex(id.deriveKey("kithstor", 0).view()) == v.kdfStor0);
    CHECK(toHex(Identity::fromSeed(unhex(v.seed)).deriveKey("kithstor", 0).view()) == v.kdfStor0);
  }

  // Distinct across contexts, subkeys and identities.
  Identity a = Identity::generate();
  Identity b = Identity::generate();
  std::set<std::string> seen;
  for (const Identity* id : {&a, &b}) {
    for (uint64_t sub : {uint64_t{0}, uint64_t{1}, uint64_t{2}, ~uint64_t{0}}) {
      seen.insert(toHex(id->deriveKey("kithstor", sub).view()));
      seen.insert(toHex(id->deriveKey("kithnois", sub).view()));
    }
  }
  CHECK(seen.size() == 2 * 4 * 2);
  // No derived key is the seed itself.
  CHECK(seen.count(toHex(a.seed())) == 0);
}

TEST_CASE("generate makes distinct identities that round-trip through their seed", "[crypto][keys]") {
  Identity a = Identity::generate();
  Identity b = Identity::generate();
  CHECK(a.publicKey() != b.publicKey());
  CHECK(toHex(a.seed()) != toHex(b.seed()));

  Identity again = Identity::fromSeed(a.seed());
  CHECK(again.publicKey() == a.publicKey());
  CHECK(again.boxPublicKey() == a.boxPublicKey());
  CHECK(toHex(again.signingSecret()) == toHex(a.signingSecret()));
  CHECK(toHex(again.boxSecret()) == toHex(a.boxSecret()));

  Bytes message = unhex("6b697468");
  CHECK(verify(a.publicKey(), message, again.sign(message)));
  CHECK_FALSE(verify(b.publicKey(), message, a.sign(message)));
}

TEST_CASE("a moved Identity keeps its keys", "[crypto][keys]") {
  Identity a = Identity::fromSeed(unhex(RFC8032[1].seed));
  Identity moved = std::move(a);
  CHECK(toHex(moved.publicKey()) == RFC8032[1].publicKey);
  CHECK(toHex(moved.sign(unhex(RFC8032[1].message))) == RFC8032[1].signature);
  Identity target = Identity::generate();
  target = std::move(moved);
  CHECK(toHex(target.seed()) == RFC8032[1].seed);
}

TEST_CASE("fromSeed refuses a seed of the wrong length with Error(CORRUPT)", "[crypto][keys]") {
  for (size_t len : {size_t{0}, size_t{31}, size_t{33}, size_t{64}}) {
    INFO("seed length " << len);
    Bytes seed(len, 0x42);
    try {
      (void)Identity::fromSeed(seed);
      FAIL("fromSeed accepted a seed of " << len << " bytes");
    } catch (const Error& e) { CHECK(e.kind() == ErrorKind::CORRUPT); }
  }
}

TEST_CASE("randomBytes fills the whole buffer and differs between calls", "[crypto][keys]") {
  std::array<uint8_t, 64> a{};
  std::array<uint8_t, 64> b{};
  randomBytes(a);
  randomBytes(b);
  CHECK(a != b);
  // A 16-byte zero run at the end would mean a short fill (probability 2^-128 otherwise).
  CHECK(std::any_of(a.end() - 16, a.end(), [](uint8_t x) { return x != 0; }));
  randomBytes(std::span<uint8_t>{});  // an empty span is allowed
}
