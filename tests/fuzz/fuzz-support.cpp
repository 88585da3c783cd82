#include "tests/fuzz/fuzz-support.h"

#include <cstdio>
#include <cstdlib>

#include "crypto/sodium.h"

namespace kith::fuzz {

void setUp() {
  static bool done = false;
  if (!done) {
    crypto::init();
    done = true;
  }
}

void contractBroken(std::string_view target, std::string_view what) {
  std::fprintf(stderr, "kith fuzz %.*s: %.*s\n", static_cast<int>(target.size()), target.data(),
               static_cast<int>(what.size()), what.data());
  std::abort();
}

Key32 fixedKey(uint8_t tag) {
  Key32 key;
  key.fill(tag);
  return key;
}

crypto::Identity fixedIdentity(uint8_t tag) {
  Key32 seed = fixedKey(tag);
  return crypto::Identity::fromSeed(seed);
}

crypto::noise::X25519KeyPair noiseKeyPair(uint8_t tag) {
  Key32 secret = fixedKey(tag);
  return crypto::noise::X25519KeyPair::fromSecret(secret);
}

ByteView noisePrologue() { return asBytes(crypto::noise::KITH_TRANSPORT_PROLOGUE); }

crypto::noise::HandshakeState noiseInitiator() {
  crypto::noise::HandshakeOverrides overrides;
  overrides.ephemeral = noiseKeyPair(NOISE_INITIATOR_EPHEMERAL);
  return crypto::noise::HandshakeState::initiator(noisePrologue(), noiseKeyPair(NOISE_INITIATOR_STATIC),
                                                  noiseKeyPair(NOISE_RESPONDER_STATIC).publicKey, std::move(overrides));
}

crypto::noise::HandshakeState noiseResponder() {
  crypto::noise::HandshakeOverrides overrides;
  overrides.ephemeral = noiseKeyPair(NOISE_RESPONDER_EPHEMERAL);
  return crypto::noise::HandshakeState::responder(noisePrologue(), noiseKeyPair(NOISE_RESPONDER_STATIC),
                                                  std::move(overrides));
}

}  // namespace kith::fuzz
