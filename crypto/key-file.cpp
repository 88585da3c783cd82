#include "crypto/key-file.h"

#include <sodium.h>

#include <cstring>

#include "base/error.h"
#include "crypto/aead.h"

namespace kith::crypto {
namespace {

// Layout (all integers big-endian):
//   magic "KITHKEY1" (8) | mode u8 (0 plain, 1 argon2id13+xchacha20poly1305) | opslimit u64 |
//   memlimit u64 | salt (16) | public key (32) | payload length u32 | payload
// The payload is seed (32) | name length u16 | name, either as is (mode 0) or sealed with the
// AEAD (nonce || ciphertext || tag) under the Argon2id key, with every byte before it as AD.
constexpr char MAGIC[8] = {'K', 'I', 'T', 'H', 'K', 'E', 'Y', '1'};
constexpr uint8_t MODE_PLAIN = 0;
constexpr uint8_t MODE_SEALED = 1;
constexpr size_t SALT_BYTES = crypto_pwhash_SALTBYTES;
constexpr size_t MODE_AT = 8;
constexpr size_t OPSLIMIT_AT = MODE_AT + 1;
constexpr size_t MEMLIMIT_AT = OPSLIMIT_AT + 8;
constexpr size_t SALT_AT = MEMLIMIT_AT + 8;
constexpr size_t HEADER_BYTES = SALT_AT + SALT_BYTES + PUBLIC_KEY_BYTES + 4;
static_assert(HEADER_BYTES == 77);  // specs/identity.md
static_assert(SALT_BYTES == 16);
static_assert(KEY_FILE_COST.opslimit == crypto_pwhash_OPSLIMIT_MODERATE);
static_assert(KEY_FILE_COST.memlimit == crypto_pwhash_MEMLIMIT_MODERATE);
static_assert(KEY_FILE_COST_INTERACTIVE.opslimit == crypto_pwhash_OPSLIMIT_INTERACTIVE);
static_assert(KEY_FILE_COST_INTERACTIVE.memlimit == crypto_pwhash_MEMLIMIT_INTERACTIVE);
// The bounds are within what crypto_pwhash itself takes.
static_assert(KEY_FILE_OPSLIMIT_MIN >= crypto_pwhash_OPSLIMIT_MIN);
static_assert(KEY_FILE_OPSLIMIT_MAX <= crypto_pwhash_OPSLIMIT_MAX);
static_assert(KEY_FILE_MEMLIMIT_MIN >= crypto_pwhash_MEMLIMIT_MIN);
static_assert(KEY_FILE_MEMLIMIT_MAX <= crypto_pwhash_MEMLIMIT_MAX);

bool withinBounds(KeyFileCost cost) {
  return cost.opslimit >= KEY_FILE_OPSLIMIT_MIN && cost.opslimit <= KEY_FILE_OPSLIMIT_MAX &&
         cost.memlimit >= KEY_FILE_MEMLIMIT_MIN && cost.memlimit <= KEY_FILE_MEMLIMIT_MAX;
}

SecretBuffer passphraseKey(ByteView passphrase, const uint8_t* salt, KeyFileCost cost) {
  KITH_ASSERT(withinBounds(cost));
  SecretBuffer key(AEAD_KEY_BYTES);
  if (crypto_pwhash(key.data(), key.size(), reinterpret_cast<const char*>(passphrase.data()), passphrase.size(), salt,
                    cost.opslimit, static_cast<size_t>(cost.memlimit), crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw Error(ErrorKind::IO, "not enough memory to derive the key from the passphrase",
                "free some memory and try again");
  }
  return key;
}

}  // namespace

Bytes writeKeyFile(const Identity& identity, const std::string& name, std::optional<ByteView> passphrase,
                   KeyFileCost cost) {
  KITH_ASSERT(withinBounds(cost));
  if (name.size() > KEY_FILE_NAME_BYTES_MAX) {
    throw Error(ErrorKind::INPUT, "the name is longer than 256 bytes", "choose a shorter name");
  }
  Bytes out(MAGIC, MAGIC + 8);
  out.push_back(passphrase ? MODE_SEALED : MODE_PLAIN);
  putU64(out, passphrase ? cost.opslimit : 0);
  putU64(out, passphrase ? cost.memlimit : 0);
  size_t saltAt = out.size();
  out.resize(out.size() + SALT_BYTES);
  if (passphrase) randombytes_buf(out.data() + saltAt, SALT_BYTES);
  out.insert(out.end(), identity.publicKey().begin(), identity.publicKey().end());

  SecretBuffer payload(SEED_BYTES + 2 + name.size());
  std::memcpy(payload.data(), identity.seed().data(), SEED_BYTES);
  payload.data()[SEED_BYTES] = static_cast<uint8_t>(name.size() >> 8);
  payload.data()[SEED_BYTES + 1] = static_cast<uint8_t>(name.size());
  std::memcpy(payload.data() + SEED_BYTES + 2, name.data(), name.size());

  if (!passphrase) {
    putU32(out, static_cast<uint32_t>(payload.size()));
    out.insert(out.end(), payload.data(), payload.data() + payload.size());
    return out;
  }
  putU32(out, static_cast<uint32_t>(payload.size() + AEAD_OVERHEAD_BYTES));
  SecretBuffer key = passphraseKey(*passphrase, out.data() + saltAt, cost);
  Bytes sealed = aeadSeal({key.data(), key.size()}, {payload.data(), payload.size()}, out);
  out.insert(out.end(), sealed.begin(), sealed.end());
  return out;
}

KeyFileInfo readKeyFileInfo(ByteView file) {
  if (file.size() < HEADER_BYTES || std::memcmp(file.data(), MAGIC, 8) != 0) {
    throw Error(ErrorKind::CORRUPT, "the key file is not a kith key file",
                std::string(HINT_RESTORE_KEY) + ", or run 'kith init' in a new home");
  }
  uint8_t mode = file[MODE_AT];
  if (mode != MODE_PLAIN && mode != MODE_SEALED) {
    throw Error(ErrorKind::CORRUPT, "the key file uses an unknown format",
                std::string("upgrade kith, or ") + HINT_RESTORE_KEY);
  }
  KeyFileInfo info;
  std::memcpy(info.publicKey.data(), file.data() + HEADER_BYTES - 4 - PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES);
  info.sealed = mode == MODE_SEALED;
  info.cost = {getU64(file.data() + OPSLIMIT_AT), getU64(file.data() + MEMLIMIT_AT)};
  return info;
}

UnlockedKeyFile openKeyFile(ByteView file, std::optional<ByteView> passphrase) {
  if (file.size() > KEY_FILE_BYTES_MAX) {
    throw Error(ErrorKind::CORRUPT, "the key file is too large to be a kith key file", HINT_RESTORE_KEY);
  }
  KeyFileInfo info = readKeyFileInfo(file);
  const uint8_t* salt = file.data() + SALT_AT;
  uint32_t payloadLen = getU32(file.data() + HEADER_BYTES - 4);
  if (payloadLen != file.size() - HEADER_BYTES) {
    throw Error(ErrorKind::CORRUPT, "the key file is truncated or damaged", HINT_RESTORE_KEY);
  }
  ByteView header = file.first(HEADER_BYTES);
  ByteView body = file.subspan(HEADER_BYTES);

  std::optional<SecretBuffer> payload;
  if (!info.sealed) {
    payload.emplace(body.size());
    // An empty payload makes an empty buffer (data() is null, which memcpy must not get).
    if (!body.empty()) std::memcpy(payload->data(), body.data(), body.size());
  } else {
    if (!passphrase) {
      throw Error(ErrorKind::AUTH, "the identity is locked with a passphrase",
                  "set KITH_PASSPHRASE or run the command on a terminal to be asked for it");
    }
    // Refuse a cost kith never wrote, so that a forged file cannot make an unlock exhaust memory
    // or time.
    if (!withinBounds(info.cost)) {
      throw Error(ErrorKind::CORRUPT,
                  "the key file asks for a passphrase cost this kith does not accept (damaged, or from a newer kith)",
                  std::string("upgrade kith, or ") + HINT_RESTORE_KEY);
    }
    SecretBuffer key = passphraseKey(*passphrase, salt, info.cost);
    payload = aeadOpenSecret({key.data(), key.size()}, body, header);
    if (!payload) {
      throw Error(ErrorKind::AUTH, "wrong passphrase",
                  "check KITH_PASSPHRASE or type the passphrase you chose at 'kith init'");
    }
  }
  if (payload->size() < SEED_BYTES + 2) {
    throw Error(ErrorKind::CORRUPT, "the key file is damaged", HINT_RESTORE_KEY);
  }
  size_t nameLen = static_cast<size_t>(payload->data()[SEED_BYTES]) << 8 | payload->data()[SEED_BYTES + 1];
  if (nameLen != payload->size() - SEED_BYTES - 2) {
    throw Error(ErrorKind::CORRUPT, "the key file is damaged", HINT_RESTORE_KEY);
  }
  UnlockedKeyFile out{Identity::fromSeed({payload->data(), SEED_BYTES}),
                      std::string(reinterpret_cast<const char*>(payload->data()) + SEED_BYTES + 2, nameLen)};
  if (sodium_memcmp(out.identity.publicKey().data(), info.publicKey.data(), PUBLIC_KEY_BYTES) != 0) {
    throw Error(ErrorKind::CORRUPT, "the key file's public key does not match its secret key", HINT_RESTORE_KEY);
  }
  return out;
}

}  // namespace kith::crypto
