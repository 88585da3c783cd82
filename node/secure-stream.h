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
//   drops the connection. A caller that decides on the reason (`kith accept`) reads the typed
//   TransportFailure that secureInitiate notes, never the description's words.
// - The handshake must finish within HANDSHAKE_TIMEOUT_MS.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <kj/async-io.h>
#include <kj/timer.h>

#include "crypto/keys.h"

namespace kith::node {

// Why the secure transport failed. Each failure has one row in TRANSPORT_FAILURES, in the order
// of the enumerators: the exception's type and description ("{}" is where the detail goes).
enum class TransportFailure : uint8_t {
  // Dialling (secureInitiate).
  INVALID_PEER_KEY,      // the key to dial is not an Ed25519 public key
  NOT_THIS_NODE,         // message 2 did not authenticate: another key answered, or no kith node
  PAYLOAD_IN_MESSAGE_2,  // message 2 carried a payload, which no kith node sends
  BAD_STATUS,            // the status frame did not authenticate
  EMPTY_STATUS,
  UNKNOWN_STATUS,
  REFUSED,  // the peer authenticated us and refused us (its reason is the detail)
  // Answering (secureRespond).
  NOT_FOR_THIS_NODE,  // message 1 did not authenticate: the peer dialled another key
  PAYLOAD_IN_MESSAGE_1,
  BAD_MESSAGE_3,
  NO_IDENTITY_KEY,        // message 3 carried no Ed25519 key
  IDENTITY_KEY_MISMATCH,  // message 3's key is not the static key the handshake authenticated
  REFUSED_PEER,           // our `accept` refused the peer (the detail: its short id and the reason)
  // Either side.
  BAD_HANDSHAKE_FRAME,      // a handshake frame over its size limit
  CLOSED_DURING_HANDSHAKE,  // the peer hung up before the handshake finished
  TIMED_OUT,                // the handshake took longer than HANDSHAKE_TIMEOUT_MS
  // After the handshake (SecureConnection::failure).
  ENCRYPT_FAILED,
  DECRYPT_FAILED,  // a frame that did not authenticate, or broke a limit
  CLOSED,          // the peer closed the connection
};

struct TransportFailureText {
  TransportFailure failure;
  kj::Exception::Type type;
  const char* text;
};

inline constexpr TransportFailureText TRANSPORT_FAILURES[] = {
    {TransportFailure::INVALID_PEER_KEY, kj::Exception::Type::FAILED,
     "the peer's key is not a valid Ed25519 public key"},
    {TransportFailure::NOT_THIS_NODE, kj::Exception::Type::FAILED,
     "secure transport failed at message 2 (wrong peer key, or not a kith node?): {}"},
    {TransportFailure::PAYLOAD_IN_MESSAGE_2, kj::Exception::Type::FAILED,
     "secure transport failed: unexpected handshake payload in message 2"},
    {TransportFailure::BAD_STATUS, kj::Exception::Type::FAILED, "secure transport failed at the peer's status: {}"},
    {TransportFailure::EMPTY_STATUS, kj::Exception::Type::FAILED, "the peer sent an empty status"},
    {TransportFailure::UNKNOWN_STATUS, kj::Exception::Type::FAILED, "the peer sent an unknown status"},
    {TransportFailure::REFUSED, kj::Exception::Type::FAILED, "the peer refused the connection: {}"},
    {TransportFailure::NOT_FOR_THIS_NODE, kj::Exception::Type::FAILED,
     "secure transport failed at message 1 (the peer dialled another key, or is not a kith node): {}"},
    {TransportFailure::PAYLOAD_IN_MESSAGE_1, kj::Exception::Type::FAILED,
     "secure transport failed: unexpected handshake payload in message 1"},
    {TransportFailure::BAD_MESSAGE_3, kj::Exception::Type::FAILED, "secure transport failed at message 3: {}"},
    {TransportFailure::NO_IDENTITY_KEY, kj::Exception::Type::FAILED,
     "secure transport failed: message 3 does not carry an identity key"},
    {TransportFailure::IDENTITY_KEY_MISMATCH, kj::Exception::Type::FAILED,
     "secure transport failed: the identity key does not match the handshake"},
    {TransportFailure::REFUSED_PEER, kj::Exception::Type::FAILED, "refused peer {}"},
    {TransportFailure::BAD_HANDSHAKE_FRAME, kj::Exception::Type::FAILED,
     "secure transport failed at reading a handshake message: {}"},
    {TransportFailure::CLOSED_DURING_HANDSHAKE, kj::Exception::Type::DISCONNECTED,
     "the peer closed the connection during the handshake"},
    {TransportFailure::TIMED_OUT, kj::Exception::Type::DISCONNECTED, "the handshake did not finish in time"},
    {TransportFailure::ENCRYPT_FAILED, kj::Exception::Type::FAILED, "secure transport failed at encrypting: {}"},
    {TransportFailure::DECRYPT_FAILED, kj::Exception::Type::FAILED, "secure transport failed at decrypting: {}"},
    {TransportFailure::CLOSED, kj::Exception::Type::DISCONNECTED, "the peer closed the connection"},
};

// The description of `failure`, with `detail` in its "{}" (a row without "{}" takes none).
std::string transportFailureText(TransportFailure failure, const std::string& detail = "");
kj::Exception transportException(TransportFailure failure, const std::string& detail = "");

struct SecureConnection {
  kj::Own<kj::AsyncIoStream> stream;
  crypto::PublicKey remote{};  // the peer's Ed25519 identity, authenticated by the handshake
  // Why the stream failed (a frame that did not authenticate, the connection lost), empty while
  // it works: layers above (Cap'n Proto's RPC) may swallow the exception itself.
  std::shared_ptr<std::string> failure = std::make_shared<std::string>();
};

// Dials as initiator over `raw`; rejects unless the responder proves it holds `expected`'s key and
// accepts us. When it rejects for a reason of the handshake's it first notes that reason in
// `*failed` (when given), which stays as it was for any other reason (a broken socket); `failed`
// must outlive the promise.
kj::Promise<SecureConnection> secureInitiate(kj::Own<kj::AsyncIoStream> raw, const crypto::Identity& me,
                                             const crypto::PublicKey& expected, kj::Timer& timer,
                                             std::optional<TransportFailure>* failed = nullptr);

// Answers as responder over `raw`. `accept` returns an empty string to accept the authenticated
// peer, or the reason to refuse it (sent to the peer, then the connection is closed).
using AcceptPeer = std::function<std::string(const crypto::PublicKey&)>;
kj::Promise<SecureConnection> secureRespond(kj::Own<kj::AsyncIoStream> raw, const crypto::Identity& me,
                                            AcceptPeer accept, kj::Timer& timer);

}  // namespace kith::node
