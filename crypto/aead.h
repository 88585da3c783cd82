// Authenticated encryption: XChaCha20-Poly1305 (IETF) with a random 24-byte nonce stored in front
// of the ciphertext. Used for entry bodies (epoch keys), the key file, and epoch keys at rest.
//
// Caveats:
// - The key must be AEAD_KEY_BYTES long (asserted: a wrong length is our bug, not input).
// - aeadOpen returns nullopt for any forged, truncated or mis-keyed input; it never throws.
#pragma once
#include <optional>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace kith::crypto {

constexpr size_t AEAD_KEY_BYTES = 32;
constexpr size_t AEAD_NONCE_BYTES = 24;
constexpr size_t AEAD_TAG_BYTES = 16;
constexpr size_t AEAD_OVERHEAD_BYTES = AEAD_NONCE_BYTES + AEAD_TAG_BYTES;

// Returns nonce || ciphertext || tag.
Bytes aeadSeal(ByteView key, ByteView plaintext, ByteView ad);
// The same with the nonce given (AEAD_NONCE_BYTES) instead of a random one: for envelopes whose
// nonce is derived from their content (protocol/relay.h). Never give one nonce to two plaintexts.
Bytes aeadSealWithNonce(ByteView key, ByteView nonce, ByteView plaintext, ByteView ad);
std::optional<Bytes> aeadOpen(ByteView key, ByteView sealed, ByteView ad);
// The same, opening into guarded memory, for secrets (epoch keys, key seeds).
std::optional<SecretBuffer> aeadOpenSecret(ByteView key, ByteView sealed, ByteView ad);

// Sealed boxes (crypto_box_seal): anonymous encryption to an X25519 public key.
constexpr size_t SEALED_BOX_OVERHEAD_BYTES = 48;
Bytes sealTo(const Key32& boxPublicKey, ByteView message);
// Opens with the recipient's X25519 key pair; nullopt when it was not sealed to that key.
std::optional<SecretBuffer> openSealed(const Key32& boxPublicKey, ByteView boxSecret, ByteView sealed);

}  // namespace kith::crypto
