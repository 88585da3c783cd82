#include "crypto/hash.h"

#include <sodium.h>

#include "base/error.h"

namespace kith::crypto {

static_assert(HASH_BYTES >= crypto_generichash_BYTES_MIN && HASH_BYTES <= crypto_generichash_BYTES_MAX);

Key32 hash(std::string_view domain, std::initializer_list<ByteView> parts) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, HASH_BYTES);
  const uint8_t zero = 0;
  crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(domain.data()), domain.size());
  crypto_generichash_update(&state, &zero, 1);
  for (ByteView part : parts) crypto_generichash_update(&state, part.data(), part.size());
  Key32 out;
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

namespace {

void keyedHashInto(ByteView key, std::string_view domain, std::initializer_list<ByteView> parts, uint8_t* out) {
  KITH_ASSERT(key.size() >= crypto_generichash_KEYBYTES_MIN && key.size() <= crypto_generichash_KEYBYTES_MAX);
  crypto_generichash_state state;
  crypto_generichash_init(&state, key.data(), key.size(), HASH_BYTES);
  const uint8_t zero = 0;
  crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(domain.data()), domain.size());
  crypto_generichash_update(&state, &zero, 1);
  for (ByteView part : parts) crypto_generichash_update(&state, part.data(), part.size());
  crypto_generichash_final(&state, out, HASH_BYTES);
  sodium_memzero(&state, sizeof state);
}

}  // namespace

SecretBuffer keyedHash(ByteView key, std::string_view domain, std::initializer_list<ByteView> parts) {
  SecretBuffer out(HASH_BYTES);
  keyedHashInto(key, domain, parts, out.data());
  return out;
}

Key32 keyedHashPublic(ByteView key, std::string_view domain, std::initializer_list<ByteView> parts) {
  Key32 out{};
  static_assert(sizeof(Key32) == HASH_BYTES);
  keyedHashInto(key, domain, parts, out.data());
  return out;
}

StreamHash::StreamHash() {
  static_assert(sizeof(crypto_generichash_state) <= 384 && alignof(crypto_generichash_state) <= 64);
  crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_), nullptr, 0, HASH_BYTES);
}

void StreamHash::update(ByteView bytes) {
  crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_), bytes.data(), bytes.size());
}

Key32 StreamHash::final() {
  Key32 out;
  crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_), out.data(), out.size());
  return out;
}

}  // namespace kith::crypto
