#include "crypto/keys.h"

#include <sodium.h>

#include <cstring>

#include "base/error.h"

namespace kith::crypto {

static_assert(PUBLIC_KEY_BYTES == crypto_sign_PUBLICKEYBYTES);
static_assert(SIGNATURE_BYTES == crypto_sign_BYTES);
static_assert(SEED_BYTES == crypto_sign_SEEDBYTES);
static_assert(SIGNING_SECRET_BYTES == crypto_sign_SECRETKEYBYTES);
static_assert(BOX_KEY_BYTES == crypto_scalarmult_curve25519_BYTES);
static_assert(BOX_KEY_BYTES == crypto_box_PUBLICKEYBYTES);
static_assert(crypto_kdf_KEYBYTES == SEED_BYTES);
static_assert(crypto_kdf_CONTEXTBYTES == 8);

Identity Identity::generate() {
  Identity id;
  randombytes_buf(id.seed_.data(), SEED_BYTES);
  crypto_sign_seed_keypair(id.publicKey_.data(), id.signingSecret_.data(), id.seed_.data());
  KITH_ASSERT(crypto_sign_ed25519_sk_to_curve25519(id.boxSecret_.data(), id.signingSecret_.data()) == 0);
  KITH_ASSERT(crypto_scalarmult_curve25519_base(id.boxPublicKey_.data(), id.boxSecret_.data()) == 0);
  return id;
}

Identity Identity::fromSeed(ByteView seed) {
  if (seed.size() != SEED_BYTES) { throw Error(ErrorKind::CORRUPT, "the identity's secret key has the wrong length"); }
  Identity id;
  std::memcpy(id.seed_.data(), seed.data(), SEED_BYTES);
  crypto_sign_seed_keypair(id.publicKey_.data(), id.signingSecret_.data(), id.seed_.data());
  KITH_ASSERT(crypto_sign_ed25519_sk_to_curve25519(id.boxSecret_.data(), id.signingSecret_.data()) == 0);
  KITH_ASSERT(crypto_scalarmult_curve25519_base(id.boxPublicKey_.data(), id.boxSecret_.data()) == 0);
  return id;
}

namespace {
// libsodium's pointer arguments are declared non-null even for zero lengths.
const uint8_t* nonNull(ByteView b) {
  static const uint8_t EMPTY = 0;
  return b.empty() ? &EMPTY : b.data();
}
}  // namespace

Signature Identity::sign(ByteView message) const {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, nonNull(message), message.size(), signingSecret_.data());
  return sig;
}

SecretBuffer Identity::deriveKey(const char (&context)[9], uint64_t subkeyId) const {
  SecretBuffer key(32);
  KITH_ASSERT(crypto_kdf_derive_from_key(key.data(), key.size(), subkeyId, context, seed_.data()) == 0);
  return key;
}

bool verify(const PublicKey& key, ByteView message, ByteView signature) {
  if (signature.size() != SIGNATURE_BYTES) return false;
  return crypto_sign_verify_detached(signature.data(), nonNull(message), message.size(), key.data()) == 0;
}

std::optional<Key32> toBoxPublicKey(const PublicKey& key) {
  Key32 out;
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), key.data()) != 0) return std::nullopt;
  return out;
}

void randomBytes(std::span<uint8_t> out) {
  if (out.empty()) return;  // randombytes_buf's pointer is declared non-null, even for size 0
  randombytes_buf(out.data(), out.size());
}

}  // namespace kith::crypto
