// Identities: an Ed25519 signing key pair per person, and the X25519 key pair derived from it
// (crypto_sign_ed25519_*_to_curve25519) for receiving sealed epoch keys and for the transport's
// static Diffie-Hellman. People exchange and compare only the Ed25519 public key; the X25519 public
// key is computed from it, so it needs no binding signature (specs/identity.md).
//
// Threading: an Identity is immutable after construction and may be read from several threads.
// Caveats:
// - Secret material lives in sodium_malloc memory (guarded pages, mlocked, wiped when freed).
// - verify() returns false for any malformed key or signature; it never throws.
#pragma once
#include <array>
#include <optional>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace kith::crypto {

constexpr size_t PUBLIC_KEY_BYTES = 32;
constexpr size_t SIGNATURE_BYTES = 64;
constexpr size_t SEED_BYTES = 32;
constexpr size_t SIGNING_SECRET_BYTES = 64;
constexpr size_t BOX_KEY_BYTES = 32;

using PublicKey = Key32;
using Signature = std::array<uint8_t, SIGNATURE_BYTES>;

class Identity {
public:
  static Identity generate();
  // Rebuilds the key pairs from a 32-byte seed (as kept in the key file).
  static Identity fromSeed(ByteView seed);

  Identity(Identity&&) noexcept = default;
  Identity& operator=(Identity&&) noexcept = default;

  const PublicKey& publicKey() const { return publicKey_; }
  const Key32& boxPublicKey() const { return boxPublicKey_; }
  ByteView seed() const { return {seed_.data(), SEED_BYTES}; }
  ByteView signingSecret() const { return {signingSecret_.data(), SIGNING_SECRET_BYTES}; }
  ByteView boxSecret() const { return {boxSecret_.data(), BOX_KEY_BYTES}; }

  Signature sign(ByteView message) const;
  // A 32-byte key for one purpose, derived from the seed with crypto_kdf (BLAKE2b). `context` is
  // exactly 8 characters, e.g. "kithstor" for the key that seals epoch keys at rest.
  SecretBuffer deriveKey(const char (&context)[9], uint64_t subkeyId) const;

private:
  Identity() = default;
  SecretBuffer seed_{SEED_BYTES};
  SecretBuffer signingSecret_{SIGNING_SECRET_BYTES};
  SecretBuffer boxSecret_{BOX_KEY_BYTES};
  PublicKey publicKey_{};
  Key32 boxPublicKey_{};
};

// True only when `signature` is a valid Ed25519 signature of `message` by `key`.
[[nodiscard]] bool verify(const PublicKey& key, ByteView message, ByteView signature);

// The X25519 public key that belongs to an Ed25519 public key; nullopt for keys that are not
// valid curve points (a peer sent garbage).
std::optional<Key32> toBoxPublicKey(const PublicKey& key);

void randomBytes(std::span<uint8_t> out);

}  // namespace kith::crypto
