// What the fuzz targets and the seed-corpus generator share: the fixed keys and passphrase every
// target uses (so that inputs made by make-corpus reach past the first check) and the way a target
// reports a broken contract. The rpc target's node is in rpc-node.h.
//
// Threading: one thread, as libFuzzer runs a target.
// Caveats:
// - Everything here is test material: the keys are fixed and public. Never use them outside tests.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "crypto/keys.h"
#include "crypto/noise.h"

namespace kith::fuzz {

// Initialises libsodium, once per process; every target calls it first.
void setUp();

// Reports a broken contract (an exception of the wrong type, a failed round trip) and aborts, which
// libFuzzer records as a crash and the replayer as a failed test.
[[noreturn]] void contractBroken(std::string_view target, std::string_view what);

// An Ed25519 identity made from 32 copies of `tag`.
crypto::Identity fixedIdentity(uint8_t tag);
// 32 bytes of `tag`.
Key32 fixedKey(uint8_t tag);

// noise: the static keys of both sides and the ephemerals of a reproducible handshake.
inline constexpr uint8_t NOISE_INITIATOR_STATIC = 0x11;
inline constexpr uint8_t NOISE_RESPONDER_STATIC = 0x12;
inline constexpr uint8_t NOISE_INITIATOR_EPHEMERAL = 0x13;
inline constexpr uint8_t NOISE_RESPONDER_EPHEMERAL = 0x14;
crypto::noise::X25519KeyPair noiseKeyPair(uint8_t tag);
crypto::noise::HandshakeState noiseInitiator();
crypto::noise::HandshakeState noiseResponder();
ByteView noisePrologue();
// The noise target's first input byte picks the message fed (modulo NOISE_STEPS).
enum NoiseStep : uint8_t { NOISE_MESSAGE_1 = 0, NOISE_MESSAGE_2 = 1, NOISE_MESSAGE_3 = 2, NOISE_STEPS = 3 };

// frames: the transport key of the frames target.
inline constexpr uint8_t FRAMES_KEY = 0x21;
// The frames target's two option bytes: the reader's frame limit and how the stream is chunked.
inline constexpr size_t FRAMES_OPTION_BYTES = 2;

// keyfile: the passphrase the keyfile target opens sealed files with.
inline constexpr std::string_view KEY_FILE_PASSPHRASE = "fuzz passphrase";

}  // namespace kith::fuzz
