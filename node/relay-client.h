// A household node's connection to a relay (specs/relay.md): dial with a transport key made for
// this connection alone (the relay cannot link two connections of one person), run the handshake,
// and hold the relay's `Relay` capability; the calls that need proofs sign them here.
//
// Threading: the loop thread only.
// Caveats: a RelayConnection must outlive every capability taken from it; a lost connection
// rejects the calls in flight with the reason (Cap'n Proto's DISCONNECTED).
#pragma once
#include <capnp/rpc-twoparty.h>

#include <memory>
#include <string>

#include "node/secure-stream.h"
#include "node/uv/uv-event-port.h"
#include "protocol/relay.h"
#include "specs/relay.capnp.h"

namespace kith::node {

// Bytes as a Data field of a relay call (a view: the bytes must outlive the call's builder).
inline capnp::Data::Reader asData(ByteView bytes) { return capnp::Data::Reader(bytes.data(), bytes.size()); }

class RelayConnection {
public:
  RelayConnection(SecureConnection connection, crypto::Identity transportKey);
  ~RelayConnection() noexcept(false);
  KJ_DISALLOW_COPY(RelayConnection);

  relayrpc::Relay::Client relay() { return relay_; }
  const crypto::PublicKey& relayKey() const { return relayKey_; }
  // This connection's own transport key (what proofs bind).
  const crypto::PublicKey& clientKey() const { return transportKey_.publicKey(); }
  // Resolves (rejects) when the connection ends.
  kj::Promise<void> onDisconnect() { return network_.onDisconnect(); }
  const std::string& failure() const { return *connection_.failure; }

  // Creates a mailbox (idempotent). `token` may be empty.
  kj::Promise<void> create(const protocol::MailboxKeys& keys, const crypto::Identity& admin, ByteView token);
  // Opens a mailbox with its credential.
  kj::Promise<relayrpc::Mailbox::Client> open(const protocol::MailboxKeys& keys);
  // Closes `from` and creates `to` (same admin key and token).
  kj::Promise<void> rotate(const Key32& from, const protocol::MailboxKeys& to, const crypto::Identity& admin);
  kj::Promise<void> remove(const Key32& id, const crypto::Identity& admin);

private:
  SecureConnection connection_;
  crypto::Identity transportKey_;
  crypto::PublicKey relayKey_;
  capnp::TwoPartyVatNetwork network_;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc_;
  relayrpc::Relay::Client relay_;
};

// Dials `host:port`, authenticates the relay as `relayKey` with a fresh transport key, and resolves
// with the connection. Rejects with the reason (refused, wrong key, nothing listening).
kj::Promise<kj::Own<RelayConnection>> connectRelay(UvEventPort& port, kj::Timer& timer, const std::string& host,
                                                   uint16_t portNumber, const crypto::PublicKey& relayKey);

}  // namespace kith::node
