// Fuzz target: the Noise XK handshake messages. The first input byte picks which message the rest
// is (modulo NOISE_STEPS): message 1 to a responder, message 2 to an initiator that sent a real
// message 1, or message 3 to a responder that has answered a real message 1. Both sides use the
// fixed keys of fuzz-support.h, so a real handshake's messages (the seed corpus) are valid inputs.
// A message must fail with kith::Error(AUTH) only; one that is accepted must let the handshake go on
// to completion and split.
#include <cstdint>

#include "base/error.h"
#include "crypto/noise.h"
#include "tests/fuzz/fuzz-support.h"

namespace {

using namespace kith;
using crypto::noise::HandshakeState;

void finish(HandshakeState& state) {
  while (!state.isComplete()) {
    if (!state.isWriteTurn()) fuzz::contractBroken("noise", "the handshake waits for a message nobody sends");
    (void)state.writeMessage({});
  }
  auto ciphers = state.split();
  if (!ciphers.send.hasKey() || !ciphers.receive.hasKey()) fuzz::contractBroken("noise", "split gave no keys");
}

void feed(uint8_t step, ByteView message) {
  switch (step % fuzz::NOISE_STEPS) {
    case fuzz::NOISE_MESSAGE_1: {
      HandshakeState responder = fuzz::noiseResponder();
      (void)responder.readMessage(message);
      if (!responder.isWriteTurn()) fuzz::contractBroken("noise", "message 1 accepted, but no turn to answer");
      (void)responder.writeMessage({});
      break;
    }
    case fuzz::NOISE_MESSAGE_2: {
      HandshakeState initiator = fuzz::noiseInitiator();
      (void)initiator.writeMessage({});
      (void)initiator.readMessage(message);
      finish(initiator);
      break;
    }
    case fuzz::NOISE_MESSAGE_3: {
      HandshakeState initiator = fuzz::noiseInitiator();
      HandshakeState responder = fuzz::noiseResponder();
      (void)responder.readMessage(initiator.writeMessage({}));
      (void)responder.writeMessage({});
      (void)responder.readMessage(message);
      if (!responder.isComplete()) fuzz::contractBroken("noise", "message 3 accepted, but not complete");
      (void)responder.remoteStatic();
      finish(responder);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kith::fuzz::setUp();
  if (size == 0) return 0;
  try {
    feed(data[0], ByteView(data + 1, size - 1));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::AUTH) fuzz::contractBroken("noise", std::string("not an AUTH error: ") + e.what());
  }
  return 0;
}
