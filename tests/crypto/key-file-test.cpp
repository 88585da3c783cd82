// The identity's key file: round trips (plain and sealed), the errors a user can meet (AUTH for the
// passphrase, CORRUPT for a damaged or foreign file), the Argon2id cost a file may name, and that a
// sealed file holds no secret in the clear. kith seals at the moderate cost (256 MiB, about 1.5 s a
// hash), so only the tests about that cost pay it: the other sealed fixtures use the interactive
// cost kith wrote before (64 MiB), which still opens, are made once, and the damage tests stop
// before the passphrase hash where they can.
#include <catch2/catch.hpp>

#include <sodium.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>

#include "base/error.h"
#include "crypto/aead.h"
#include "crypto/key-file.h"
#include "tests/support/errors.h"
#include "tests/support/seed.h"

namespace {

using namespace kith;
using namespace kith::crypto;

// The layout from key-file.cpp (specs/identity.md): magic 8 | mode 1 | opslimit 8 | memlimit 8 |
// salt 16 | public key 32 | payload length 4 | payload.
constexpr size_t MODE_AT = 8;
constexpr size_t OPS_AT = 9;
constexpr size_t MEM_AT = 17;
constexpr size_t SALT_AT = 25;
constexpr size_t PUBLIC_KEY_AT = 41;
constexpr size_t PAYLOAD_LEN_AT = 73;
constexpr size_t PAYLOAD_AT = 77;

const std::string NAME = "Margaret O'Brien \xe2\x9c\xbf";  // a non-ASCII name survives
const std::string PASSPHRASE = "correct horse battery staple";

ByteView pass(const std::string& s) { return asBytes(s); }

bool contains(ByteView haystack, ByteView needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

void putU64At(Bytes& file, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) file[at + i] = static_cast<uint8_t>(v >> (8 * (7 - i)));
}
void putU32At(Bytes& file, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) file[at + i] = static_cast<uint8_t>(v >> (8 * (3 - i)));
}

// The kind of kith::Error that `open` throws, which must say what happened and what to do about
// it; fails the test if it opens.
ErrorKind refusalKindOf(const std::function<void()>& open) {
  Error e = kith::test::errorOf(open);
  CHECK_FALSE(std::string(e.what()).empty());
  CHECK_FALSE(e.hint().empty());
  return e.kind();
}

const Identity& fixtureIdentity() {
  static const Identity id = Identity::generate();
  return id;
}
const Bytes& plainFile() {
  static const Bytes file = writeKeyFile(fixtureIdentity(), NAME, std::nullopt);
  return file;
}
// Sealed at the interactive cost, as kith wrote key files before the moderate one.
const Bytes& sealedFile() {
  static const Bytes file = writeKeyFile(fixtureIdentity(), NAME, pass(PASSPHRASE), KEY_FILE_COST_INTERACTIVE);
  return file;
}

}  // namespace

TEST_CASE("a plain key file round-trips", "[crypto][key-file]") {
  const Bytes& file = plainFile();
  REQUIRE(file.size() == PAYLOAD_AT + SEED_BYTES + 2 + NAME.size());
  CHECK(std::equal(file.begin(), file.begin() + 8, "KITHKEY1"));

  KeyFileInfo info = readKeyFileInfo(file);
  CHECK(info.publicKey == fixtureIdentity().publicKey());
  CHECK_FALSE(info.sealed);

  UnlockedKeyFile opened = openKeyFile(file, std::nullopt);
  CHECK(opened.name == NAME);
  CHECK(opened.identity.publicKey() == fixtureIdentity().publicKey());
  CHECK(toHex(opened.identity.seed()) == toHex(fixtureIdentity().seed()));
  // A passphrase given for a plain file is not needed and does no harm.
  CHECK(openKeyFile(file, pass(PASSPHRASE)).identity.publicKey() == fixtureIdentity().publicKey());
}

TEST_CASE("a sealed key file round-trips with its passphrase", "[crypto][key-file]") {
  const Bytes& file = sealedFile();
  REQUIRE(file.size() == PAYLOAD_AT + AEAD_OVERHEAD_BYTES + SEED_BYTES + 2 + NAME.size());

  KeyFileInfo info = readKeyFileInfo(file);
  CHECK(info.publicKey == fixtureIdentity().publicKey());
  CHECK(info.sealed);

  UnlockedKeyFile opened = openKeyFile(file, pass(PASSPHRASE));
  CHECK(opened.name == NAME);
  CHECK(opened.identity.publicKey() == fixtureIdentity().publicKey());
  CHECK(toHex(opened.identity.seed()) == toHex(fixtureIdentity().seed()));
}

TEST_CASE("a new sealed key file names the moderate Argon2id cost and opens with its passphrase",
          "[crypto][key-file]") {
  Bytes file = writeKeyFile(fixtureIdentity(), NAME, pass(PASSPHRASE));
  CHECK(getU64(file.data() + OPS_AT) == crypto_pwhash_OPSLIMIT_MODERATE);
  CHECK(getU64(file.data() + MEM_AT) == crypto_pwhash_MEMLIMIT_MODERATE);
  KeyFileInfo info = readKeyFileInfo(file);
  CHECK(info.cost.opslimit == crypto_pwhash_OPSLIMIT_MODERATE);
  CHECK(info.cost.memlimit == crypto_pwhash_MEMLIMIT_MODERATE);
  CHECK_FALSE(info.costOutdated());
  UnlockedKeyFile opened = openKeyFile(file, pass(PASSPHRASE));
  CHECK(opened.name == NAME);
  CHECK(opened.identity.publicKey() == fixtureIdentity().publicKey());
}

TEST_CASE("a key file sealed at the old interactive cost still opens and says it is outdated", "[crypto][key-file]") {
  const Bytes& file = sealedFile();
  KeyFileInfo info = readKeyFileInfo(file);
  CHECK(info.cost.opslimit == crypto_pwhash_OPSLIMIT_INTERACTIVE);
  CHECK(info.cost.memlimit == crypto_pwhash_MEMLIMIT_INTERACTIVE);
  CHECK(info.costOutdated());
  CHECK(openKeyFile(file, pass(PASSPHRASE)).identity.publicKey() == fixtureIdentity().publicKey());
  // A plain file has no cost to be outdated.
  CHECK_FALSE(readKeyFileInfo(plainFile()).costOutdated());
}

TEST_CASE("names from empty to 256 bytes round-trip, and longer names are refused", "[crypto][key-file]") {
  Identity id = Identity::generate();
  for (size_t len : {size_t{0}, size_t{1}, KEY_FILE_NAME_BYTES_MAX}) {
    INFO("name length " << len);
    std::string name(len, 'n');
    UnlockedKeyFile opened = openKeyFile(writeKeyFile(id, name, std::nullopt), std::nullopt);
    CHECK(opened.name == name);
    CHECK(opened.identity.publicKey() == id.publicKey());
  }
  // One sealed file with the longest name.
  std::string longest(KEY_FILE_NAME_BYTES_MAX, 'x');
  CHECK(openKeyFile(writeKeyFile(id, longest, pass("p"), KEY_FILE_COST_INTERACTIVE), pass("p")).name == longest);

  try {
    (void)writeKeyFile(id, std::string(KEY_FILE_NAME_BYTES_MAX + 1, 'n'), std::nullopt);
    FAIL("a 257-byte name was accepted");
  } catch (const Error& e) { CHECK(e.kind() == ErrorKind::INPUT); }
}

TEST_CASE("two sealed files of one identity differ (fresh salt and nonce)", "[crypto][key-file]") {
  Bytes again = writeKeyFile(fixtureIdentity(), NAME, pass(PASSPHRASE), KEY_FILE_COST_INTERACTIVE);
  const Bytes& first = sealedFile();
  REQUIRE(again.size() == first.size());
  CHECK(!std::equal(first.begin() + SALT_AT, first.begin() + SALT_AT + 16, again.begin() + SALT_AT));
  CHECK(!std::equal(first.begin() + PAYLOAD_AT, first.begin() + PAYLOAD_AT + 24, again.begin() + PAYLOAD_AT));
}

TEST_CASE("a sealed key file needs the right passphrase: Error(AUTH)", "[crypto][key-file]") {
  const Bytes& file = sealedFile();
  CHECK(refusalKindOf([&] { (void)openKeyFile(file, std::nullopt); }) == ErrorKind::AUTH);
  CHECK(refusalKindOf([&] { (void)openKeyFile(file, pass("correct horse battery stapl")); }) == ErrorKind::AUTH);
  CHECK(refusalKindOf([&] { (void)openKeyFile(file, pass(PASSPHRASE + " ")); }) == ErrorKind::AUTH);
  CHECK(refusalKindOf([&] { (void)openKeyFile(file, pass("")); }) == ErrorKind::AUTH);
}

TEST_CASE("readKeyFileInfo gives the public key of a sealed file without the passphrase", "[crypto][key-file]") {
  KeyFileInfo info = readKeyFileInfo(sealedFile());
  CHECK(info.sealed);
  CHECK(info.publicKey == fixtureIdentity().publicKey());
}

TEST_CASE("a sealed key file holds neither the seed, the name nor the passphrase in the clear", "[crypto][key-file]") {
  const Bytes& sealed = sealedFile();
  const Identity& id = fixtureIdentity();
  CHECK_FALSE(contains(sealed, id.seed()));
  CHECK_FALSE(contains(sealed, id.seed().first(8)));  // nor a recognisable piece of it
  CHECK_FALSE(contains(sealed, id.seed().last(8)));
  CHECK_FALSE(contains(sealed, id.signingSecret().first(SEED_BYTES)));
  CHECK_FALSE(contains(sealed, asBytes(NAME)));
  CHECK_FALSE(contains(sealed, asBytes(PASSPHRASE)));
  // The search itself works: the plain file does hold the seed and the name, and both hold the
  // public key.
  CHECK(contains(plainFile(), id.seed()));
  CHECK(contains(plainFile(), asBytes(NAME)));
  CHECK(contains(sealed, id.publicKey()));
}

TEST_CASE("a truncated or extended key file is Error(CORRUPT)", "[crypto][key-file]") {
  for (const Bytes* file : {&plainFile(), &sealedFile()}) {
    for (size_t len = 0; len < file->size(); ++len) {
      INFO((file == &plainFile() ? "plain" : "sealed") << " file cut to " << len << " bytes");
      ByteView cut = ByteView(*file).first(len);
      CHECK(refusalKindOf([&] { (void)openKeyFile(cut, pass(PASSPHRASE)); }) == ErrorKind::CORRUPT);
      if (len < PAYLOAD_AT) {
        CHECK(refusalKindOf([&] { (void)readKeyFileInfo(cut); }) == ErrorKind::CORRUPT);
      }
    }
    Bytes longer = *file;
    longer.push_back(0);
    CHECK(refusalKindOf([&] { (void)openKeyFile(longer, pass(PASSPHRASE)); }) == ErrorKind::CORRUPT);
  }
}

TEST_CASE("a foreign file (bad magic, unknown mode) is Error(CORRUPT)", "[crypto][key-file]") {
  for (const Bytes* file : {&plainFile(), &sealedFile()}) {
    for (size_t i = 0; i < 8; ++i) {
      Bytes bad = *file;
      bad[i] ^= 0x20;
      INFO("magic byte " << i);
      CHECK(refusalKindOf([&] { (void)readKeyFileInfo(bad); }) == ErrorKind::CORRUPT);
      CHECK(refusalKindOf([&] { (void)openKeyFile(bad, pass(PASSPHRASE)); }) == ErrorKind::CORRUPT);
    }
    for (uint8_t mode : {uint8_t{2}, uint8_t{0x80}, uint8_t{0xff}}) {
      Bytes bad = *file;
      bad[MODE_AT] = mode;
      INFO("mode " << int(mode));
      CHECK(refusalKindOf([&] { (void)readKeyFileInfo(bad); }) == ErrorKind::CORRUPT);
      CHECK(refusalKindOf([&] { (void)openKeyFile(bad, pass(PASSPHRASE)); }) == ErrorKind::CORRUPT);
    }
  }
  std::string text =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n";
  CHECK(refusalKindOf([&] { (void)openKeyFile(asBytes(text), std::nullopt); }) == ErrorKind::CORRUPT);
  CHECK(refusalKindOf([&] { (void)openKeyFile(ByteView{}, std::nullopt); }) == ErrorKind::CORRUPT);
}

TEST_CASE("passphrase parameters outside the named bounds are Error(CORRUPT) before any hashing",
          "[crypto][key-file]") {
  struct Params {
    uint64_t ops;
    uint64_t mem;
  };
  const uint64_t ops = KEY_FILE_OPSLIMIT_MIN;
  const uint64_t mem = KEY_FILE_MEMLIMIT_MIN;
  // Just outside each bound, libsodium's "sensitive" cost (1 GiB, 4 passes: a forged file must not
  // make an unlock take that), and absurd values.
  for (Params p : {Params{0, mem}, Params{KEY_FILE_OPSLIMIT_MIN - 1, mem}, Params{KEY_FILE_OPSLIMIT_MAX + 1, mem},
                   Params{crypto_pwhash_OPSLIMIT_SENSITIVE, mem}, Params{~uint64_t{0}, mem}, Params{ops, 0},
                   Params{ops, KEY_FILE_MEMLIMIT_MIN - 1}, Params{ops, KEY_FILE_MEMLIMIT_MAX + 1},
                   Params{ops, crypto_pwhash_MEMLIMIT_SENSITIVE}, Params{ops, uint64_t{1} << 62},
                   Params{ops, ~uint64_t{0}}, Params{~uint64_t{0}, ~uint64_t{0}}}) {
    Bytes bad = sealedFile();
    putU64At(bad, OPS_AT, p.ops);
    putU64At(bad, MEM_AT, p.mem);
    INFO("opslimit " << p.ops << ", memlimit " << p.mem);
    CHECK(refusalKindOf([&] { (void)openKeyFile(bad, pass(PASSPHRASE)); }) == ErrorKind::CORRUPT);
    // The clear header stays readable; the parameters only matter when unlocking.
    CHECK(readKeyFileInfo(bad).publicKey == fixtureIdentity().publicKey());
  }
}

TEST_CASE("the named cost bounds are what kith writes within libsodium's range", "[crypto][key-file]") {
  CHECK(KEY_FILE_COST.opslimit == crypto_pwhash_OPSLIMIT_MODERATE);
  CHECK(KEY_FILE_COST.memlimit == crypto_pwhash_MEMLIMIT_MODERATE);
  CHECK(KEY_FILE_OPSLIMIT_MIN == crypto_pwhash_OPSLIMIT_INTERACTIVE);
  CHECK(KEY_FILE_MEMLIMIT_MIN == crypto_pwhash_MEMLIMIT_INTERACTIVE);
  CHECK(KEY_FILE_OPSLIMIT_MAX == crypto_pwhash_OPSLIMIT_MODERATE);
  CHECK(KEY_FILE_MEMLIMIT_MAX == crypto_pwhash_MEMLIMIT_MODERATE);
  // At most 256 MiB: a crafted file cannot ask for gigabytes.
  CHECK(KEY_FILE_MEMLIMIT_MAX <= uint64_t{256} << 20);
}

TEST_CASE("a cost inside the bounds but not one kith writes is hashed and not refused", "[crypto][key-file]") {
  // The bounds are checked one by one: the most passes with the least memory is in range, so the
  // file is hashed with it and the AEAD (which authenticates the header) says AUTH, not CORRUPT.
  Bytes mixed = sealedFile();
  putU64At(mixed, OPS_AT, KEY_FILE_OPSLIMIT_MAX);
  putU64At(mixed, MEM_AT, KEY_FILE_MEMLIMIT_MIN);
  CHECK(refusalKindOf([&] { (void)openKeyFile(mixed, pass(PASSPHRASE)); }) == ErrorKind::AUTH);
}

TEST_CASE("an oversized key file or payload length is Error(CORRUPT)", "[crypto][key-file]") {
  // A plain file whose payload length agrees with an oversized file: only the size cap refuses it.
  Bytes big = plainFile();
  big.resize(KEY_FILE_BYTES_MAX + 1, 'n');
  putU32At(big, PAYLOAD_LEN_AT, static_cast<uint32_t>(big.size() - PAYLOAD_AT));
  CHECK(refusalKindOf([&] { (void)openKeyFile(big, std::nullopt); }) == ErrorKind::CORRUPT);
  Bytes huge(1 << 20, 0);
  std::copy_n(plainFile().begin(), PAYLOAD_AT, huge.begin());
  CHECK(refusalKindOf([&] { (void)openKeyFile(huge, std::nullopt); }) == ErrorKind::CORRUPT);

  for (uint32_t len : {0u, 1u, 0x7fffffffu, 0xffffffffu}) {
    for (const Bytes* file : {&plainFile(), &sealedFile()}) {
      Bytes bad = *file;
      putU32At(bad, PAYLOAD_LEN_AT, len);
      INFO("payload length " << len);
      CHECK(refusalKindOf([&] { (void)openKeyFile(bad, pass(PASSPHRASE)); }) == ErrorKind::CORRUPT);
    }
  }
}

TEST_CASE("a plain file whose secret does not match its public key is Error(CORRUPT)", "[crypto][key-file]") {
  // Another identity's public key in the header of this file.
  Bytes swapped = plainFile();
  Identity other = Identity::generate();
  std::copy(other.publicKey().begin(), other.publicKey().end(), swapped.begin() + PUBLIC_KEY_AT);
  CHECK(refusalKindOf([&] { (void)openKeyFile(swapped, std::nullopt); }) == ErrorKind::CORRUPT);

  // A name length that disagrees with the payload.
  Bytes badName = plainFile();
  badName[PAYLOAD_AT + SEED_BYTES + 1] ^= 1;
  CHECK(refusalKindOf([&] { (void)openKeyFile(badName, std::nullopt); }) == ErrorKind::CORRUPT);

  // A payload too short to hold a seed and a name length.
  Bytes shortPayload(plainFile().begin(), plainFile().begin() + PAYLOAD_AT + SEED_BYTES + 1);
  putU32At(shortPayload, PAYLOAD_LEN_AT, SEED_BYTES + 1);
  CHECK(refusalKindOf([&] { (void)openKeyFile(shortPayload, std::nullopt); }) == ErrorKind::CORRUPT);
}

TEST_CASE("every single-bit flip in a plain key file is refused or harmless, never a crash", "[crypto][key-file]") {
  const Bytes& file = plainFile();
  const PublicKey& publicKey = fixtureIdentity().publicKey();
  const size_t nameAt = PAYLOAD_AT + SEED_BYTES + 2;
  for (size_t bit = 0; bit < file.size() * 8; ++bit) {
    const size_t at = bit / 8;
    Bytes bad = file;
    bad[at] ^= static_cast<uint8_t>(1u << (bit % 8));
    INFO("bit " << bit << " of byte " << at);
    try {
      UnlockedKeyFile opened = openKeyFile(bad, std::nullopt);
      // A plain file has no integrity check of its own: a flip can go unnoticed only where nothing
      // depends on it (the unused passphrase parameters and salt) or in the name, and it can never
      // yield another identity.
      CHECK(((at >= OPS_AT && at < PUBLIC_KEY_AT) || at >= nameAt));
      CHECK(opened.identity.publicKey() == publicKey);
    } catch (const Error& e) {
      if (at == MODE_AT && bit % 8 == 0) {
        CHECK(e.kind() == ErrorKind::AUTH);  // it now claims to be sealed, and we gave no passphrase
      } else {
        CHECK(e.kind() == ErrorKind::CORRUPT);
      }
    }
  }
}

TEST_CASE("damage to a sealed key file is refused (AUTH or CORRUPT), never a crash", "[crypto][key-file]") {
  // Argon2id runs for every flip that reaches the AEAD, so this samples one bit in each field
  // rather than all of them. The AEAD cannot tell damage from a wrong passphrase, so damage to the
  // authenticated header or the ciphertext reads as AUTH; the length checks give CORRUPT.
  const Bytes& file = sealedFile();
  struct Flip {
    const char* field;
    size_t at;
    uint8_t mask;
  };
  const size_t body = PAYLOAD_AT;
  const Flip flips[] = {
      {"opslimit (low bit, still in range)", OPS_AT + 7, 0x01},
      {"salt", SALT_AT + 3, 0x10},
      {"public key", PUBLIC_KEY_AT + 31, 0x80},
      {"payload length", PAYLOAD_LEN_AT + 3, 0x01},
      {"nonce", body + 5, 0x04},
      {"ciphertext (seed)", body + AEAD_NONCE_BYTES + 3, 0x01},
      {"ciphertext (name)", file.size() - AEAD_TAG_BYTES - 1, 0x40},
      {"tag", file.size() - 1, 0x80},
  };
  for (const Flip& f : flips) {
    Bytes bad = file;
    bad[f.at] ^= f.mask;
    INFO(f.field << " (byte " << f.at << ")");
    ErrorKind kind = refusalKindOf([&] { (void)openKeyFile(bad, pass(PASSPHRASE)); });
    CHECK((kind == ErrorKind::AUTH || kind == ErrorKind::CORRUPT));
  }
}

TEST_CASE("random and half-valid key files are always Error(CORRUPT)", "[crypto][key-file]") {
  const uint64_t seed = kith::test::testSeed("key-file random inputs");
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  auto randomFill = [&](Bytes& b, size_t from) {
    for (size_t i = from; i < b.size(); ++i) b[i] = static_cast<uint8_t>(rng());
  };
  for (int round = 0; round < 1000; ++round) {
    INFO("round " << round);
    Bytes file(rng() % 600);
    randomFill(file, 0);
    if (round % 2 == 1 && file.size() >= PAYLOAD_AT) {
      // Past the magic and with a consistent length, so the checks behind them run too.
      std::copy_n("KITHKEY1", 8, file.begin());
      file[MODE_AT] = static_cast<uint8_t>(rng() % 2);
      putU32At(file, PAYLOAD_LEN_AT, static_cast<uint32_t>(file.size() - PAYLOAD_AT));
      // Keep random passphrase parameters out of range so that no round runs Argon2id with
      // gigabytes of memory (the in-range case is covered above).
      putU64At(file, OPS_AT, 0);
      if (file[MODE_AT] == 0 && file.size() >= PAYLOAD_AT + SEED_BYTES + 2) {
        size_t nameLen = file.size() - PAYLOAD_AT - SEED_BYTES - 2;
        file[PAYLOAD_AT + SEED_BYTES] = static_cast<uint8_t>(nameLen >> 8);
        file[PAYLOAD_AT + SEED_BYTES + 1] = static_cast<uint8_t>(nameLen);
      }
    }
    ErrorKind kind = refusalKindOf([&] { (void)openKeyFile(file, pass(PASSPHRASE)); });
    CHECK(kind == ErrorKind::CORRUPT);
  }
}
