// The secure transport: a Noise_XK_25519_ChaChaPoly_BLAKE2b handshake over a byte stream, then a
// kj::AsyncIoStream whose bytes travel as Noise transport frames (specs/transport.md). Cap'n Proto
// RPC runs on top of it.
//
// The initiator knows whom it dials (the peer's Ed25519 key, converted to X25519 for the static
// DH); the responder learns the initiator's Ed25519 key from message 3's payload, checks that it
// matches the static key the handshake authenticated, and asks its `accept` predicate whether it
// trusts that peer. After the handshake the responder sends one status frame: accepted, or refused
// with a reason, which the initiator turns into a clear error.
//
// Threading: the loop thread only.
// Caveats:
// - Every failure (timeout, wrong key, garbage, truncated or replayed messages, a flipped bit in
//   any frame) rejects with a kj exception whose description says why; the caller logs it and
//   drops the connection.
// - The handshake must finish within HANDSHAKE_TIMEOUT_MS.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include <kj/async-io.h>
#include <kj/timer.h>

#include "crypto/keys.h"

namespace kith::node {

struct SecureConnection {
  kj::Own<kj::AsyncIoStream> stream;
  crypto::PublicKey remote{};  // the peer's Ed25519 identity, authenticated by the handshake
  // Why the stream failed (a frame that did not authenticate, the connection lost), empty while
  // it works: layers above (Cap'n Proto's RPC) may swallow the exception itself.
  std::shared_ptr<std::string> failure = std::make_shared<std::string>();
};

// Dials as initiator over `raw`; rejects unless the responder proves it holds `expected`'s key and
// accepts us.
kj::Promise<SecureConnection> secureInitiate(kj::Own<kj::AsyncIoStream> raw, const crypto::Identity& me,
                                             const crypto::PublicKey& expected, kj::Timer& timer);

// Answers as responder over `raw`. `accept` returns an empty string to accept the authenticated
// peer, or the reason to refuse it (sent to the peer, then the connection is closed).
using AcceptPeer = std::function<std::string(const crypto::PublicKey&)>;
kj::Promise<SecureConnection> secureRespond(kj::Own<kj::AsyncIoStream> raw, const crypto::Identity& me,
                                            AcceptPeer accept, kj::Timer& timer);

}  // namespace kith::node
