#include "crypto/aead.h"

#include <sodium.h>

#include <algorithm>

#include "base/error.h"

namespace kith::crypto {

static_assert(AEAD_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(AEAD_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(AEAD_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(SEALED_BOX_OVERHEAD_BYTES == crypto_box_SEALBYTES);

Bytes aeadSeal(ByteView key, ByteView plaintext, ByteView ad) {
  KITH_ASSERT(key.size() == AEAD_KEY_BYTES);
  Bytes out(AEAD_NONCE_BYTES + plaintext.size() + AEAD_TAG_BYTES);
  randombytes_buf(out.data(), AEAD_NONCE_BYTES);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + AEAD_NONCE_BYTES, &len, plaintext.data(), plaintext.size(),
                                             ad.data(), ad.size(), nullptr, out.data(), key.data());
  KITH_ASSERT(len == plaintext.size() + AEAD_TAG_BYTES);
  return out;
}

Bytes aeadSealWithNonce(ByteView key, ByteView nonce, ByteView plaintext, ByteView ad) {
  KITH_ASSERT(key.size() == AEAD_KEY_BYTES && nonce.size() == AEAD_NONCE_BYTES);
  Bytes out(AEAD_NONCE_BYTES + plaintext.size() + AEAD_TAG_BYTES);
  std::copy(nonce.begin(), nonce.end(), out.begin());
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + AEAD_NONCE_BYTES, &len, plaintext.data(), plaintext.size(),
                                             ad.data(), ad.size(), nullptr, out.data(), key.data());
  KITH_ASSERT(len == plaintext.size() + AEAD_TAG_BYTES);
  return out;
}

namespace {
bool open(ByteView key, ByteView sealed, ByteView ad, uint8_t* out) {
  KITH_ASSERT(key.size() == AEAD_KEY_BYTES);
  unsigned long long len = 0;
  return crypto_aead_xchacha20poly1305_ietf_decrypt(out, &len, nullptr, sealed.data() + AEAD_NONCE_BYTES,
                                                    sealed.size() - AEAD_NONCE_BYTES, ad.data(), ad.size(),
                                                    sealed.data(), key.data()) == 0;
}
}  // namespace

std::optional<Bytes> aeadOpen(ByteView key, ByteView sealed, ByteView ad) {
  if (sealed.size() < AEAD_OVERHEAD_BYTES) return std::nullopt;
  Bytes out(sealed.size() - AEAD_OVERHEAD_BYTES);
  if (!open(key, sealed, ad, out.data())) return std::nullopt;
  return out;
}

std::optional<SecretBuffer> aeadOpenSecret(ByteView key, ByteView sealed, ByteView ad) {
  if (sealed.size() < AEAD_OVERHEAD_BYTES) return std::nullopt;
  SecretBuffer out(sealed.size() - AEAD_OVERHEAD_BYTES);
  if (!open(key, sealed, ad, out.data())) return std::nullopt;
  return out;
}

Bytes sealTo(const Key32& boxPublicKey, ByteView message) {
  Bytes out(message.size() + SEALED_BOX_OVERHEAD_BYTES);
  KITH_ASSERT(crypto_box_seal(out.data(), message.data(), message.size(), boxPublicKey.data()) == 0);
  return out;
}

std::optional<SecretBuffer> openSealed(const Key32& boxPublicKey, ByteView boxSecret, ByteView sealed) {
  KITH_ASSERT(boxSecret.size() == crypto_box_SECRETKEYBYTES);
  if (sealed.size() < SEALED_BOX_OVERHEAD_BYTES) return std::nullopt;
  SecretBuffer out(sealed.size() - SEALED_BOX_OVERHEAD_BYTES);
  if (crypto_box_seal_open(out.data(), sealed.data(), sealed.size(), boxPublicKey.data(), boxSecret.data()) != 0) {
    return std::nullopt;
  }
  return out;
}

}  // namespace kith::crypto
