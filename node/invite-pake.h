// Redeeming a short invite code (specs/invite.md, "Redemption by short code"): a pre-handshake on
// the node's listening port that runs CPace (crypto/cpace.h) with the invite's password, confirms
// the key both ways, and then has the node reveal its Ed25519 key and the invite's one-time secret
// under the CPace key. With those the friend's node goes on exactly as with a long code: Noise XK
// against that key, then Node.redeemInvite(secret).
//
// On the wire (specs/transport.md, "Short-code pre-handshake") every message is a frame, a u16
// big-endian length then the body, as the Noise handshake's are; the first frame's length,
// PAKE_HELLO_BYTES, is not Noise message 1's (48), so a listener tells the two apart from the
// first two bytes (classify, then PrefixedStream hands them back to the Noise handshake).
//
// Threading: the loop thread only.
// Caveats:
// - The node counts a try against the invite (store::Store::countShortTry) before it answers with
//   anything that lets the friend test its guess, and takes it back only when the friend's key
//   confirmation verifies: a guesser that hangs up early still used a try. After
//   protocol::INVITE_SHORT_TRIES_MAX the invite is burnt, the long code's secret with it.
// - Every failure a peer can cause rejects with a kj exception saying why (the caller logs it and
//   drops the connection); nothing here asserts on peer input. The caller bounds the time.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <kj/async-io.h>

#include "crypto/keys.h"
#include "protocol/invite.h"
#include "store/store.h"

namespace kith::node {

// The hello's body: PAKE_MAGIC (protocol and version), slot (1), sid (16), Ya (32).
inline constexpr std::string_view PAKE_MAGIC = "kithpake1";
inline constexpr size_t PAKE_SID_BYTES = 16;
inline constexpr uint16_t PAKE_HELLO_BYTES = 9 + 1 + PAKE_SID_BYTES + 32;
// Noise XK message 1, the only other first frame a listener takes (specs/transport.md).
inline constexpr uint16_t NOISE_MESSAGE_1_BYTES = 48;
static_assert(PAKE_HELLO_BYTES != NOISE_MESSAGE_1_BYTES);
// The node's answer: 0x00, Yb (32), its confirmation tag (64); or 0x01 and a reason.
inline constexpr size_t PAKE_ANSWER_BYTES = 1 + 32 + 64;
inline constexpr size_t PAKE_REASON_BYTES_MAX = 200;
inline constexpr size_t PAKE_CONFIRM_BYTES = 64;
// The reveal: XChaCha20-Poly1305 (nonce 24, tag 16) of the node key (32) and the secret (10).
inline constexpr size_t PAKE_REVEAL_BYTES = 24 + 32 + protocol::INVITE_SECRET_BYTES + 16;

// What a listener's first frame header says the connection speaks.
enum class FirstFrame { NOISE, PAKE };
FirstFrame classifyFirstFrame(uint16_t length);

// A stream that yields `prefix` before what `inner` reads: gives the two bytes a listener peeked at
// back to the Noise handshake.
kj::Own<kj::AsyncIoStream> prefixedStream(kj::Own<kj::AsyncIoStream> inner, Bytes prefix);

// The node's side, after the hello's two header bytes were read: reads the hello, answers, checks
// the friend's confirmation and reveals. Resolves to a line for the log saying what happened (a
// refusal, a wrong guess and whether it burnt the invite, or success); rejects when the peer sent
// something malformed. `stream`, `store` and `me` must outlive the promise.
kj::Promise<std::string> answerShortCode(kj::AsyncIoStream& stream, store::Store& store, const crypto::Identity& me);

// The friend's side.
struct ShortCodeAnswer {
  enum class Outcome { REVEALED, REFUSED, WRONG_CODE };
  Outcome outcome = Outcome::REFUSED;
  crypto::PublicKey node{};  // REVEALED: the inviting node's key
  Bytes secret;              // REVEALED: the invite's one-time secret (the long code's)
  std::string reason;        // REFUSED: the node's reason (untrusted text: make it terminal-safe)
};
// Runs the exchange over a fresh connection to the code's address. Rejects when the node answered
// with something malformed or hung up. `stream` must outlive the promise.
kj::Promise<ShortCodeAnswer> askShortCode(kj::AsyncIoStream& stream, const protocol::ShortInviteCode& code);

}  // namespace kith::node
