// The relay (`kith relay serve`, specs/relay.md): a blind store-and-forward server for household
// nodes. It listens, answers the Noise handshake of any key (a client dials with a new key every
// time), and serves specs/relay.capnp's `Relay` as the bootstrap capability of Cap'n Proto's
// two-party RPC, asking the client for nothing. Mailboxes and envelopes live in a RelayStore.
//
//     store::RelayStore store(dir, policy);
//     RelayServer server(io.getPort(), store, identity, settings, logger);
//     server.start();  // binds; throws with the address when it cannot
//     io.getPort().runUntil(onShutdownSignal(io.getPort()), io.getWaitScope());
//
// What it checks: proofs are the credential's (open) or admin key's (rotate, remove) signature of
// protocol::relayProofMessage with this relay's key and the connection's authenticated transport
// key, so a proof is good on one connection only; an unknown id and a bad proof get the same answer
// ("no such mailbox or wrong credential"). A put's envelopes must each be of an envelope size (a
// bucket of protocol::ENVELOPE_BUCKETS, sealed), at most RELAY_ENVELOPES_PER_PUT_MAX and
// RELAY_PUT_ACCEPT_BYTES_MAX together. Every refusal is answered with its reason and logged (ids as 8 hex
// digits), and counted in stats().
//
// Threading: the loop thread only.
// Caveats:
// - Connections are refused at the handshake, with a reason, past settings.connectionsPerAddress
//   from one address or settings.connectionsMax in all; at most HANDSHAKES_IN_FLIGHT_MAX
//   handshakes run at once (a new one drops the oldest unfinished).
// - Fairness: each call is served whole on the loop (one put is one write transaction), calls of
//   all connections take turns as their bytes arrive, and a connection's reading pauses while its
//   unanswered calls pass RELAY_RPC_FLOW_LIMIT_WORDS or its unsent answers
//   RELAY_SEND_QUEUE_PAUSE_READ_BYTES: one flooding connection costs bounded memory and waits its
//   turn.
// - Idle, nothing runs but the retention sweep (every RELAY_SWEEP_INTERVAL_MS) and the timeouts of
//   waiting gets (RELAY_GET_WAIT_MS).
// - Destroy the server before the store and the event port.
#pragma once
#include <spdlog/logger.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <kj/async.h>

#include "node/relay-limits.h"
#include "node/secure-stream.h"
#include "node/uv/uv-stream.h"
#include "specs/relay.capnp.h"
#include "store/relay-store.h"

namespace kith::node {

struct RelayServerSettings {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the OS chooses (see listenPort())
  size_t connectionsPerAddress = RELAY_DEFAULT_CONNECTIONS_PER_ADDRESS;
  size_t connectionsMax = RELAY_CONNECTIONS_MAX;
};

// Why the relay refused something that the store does not judge.
enum class RelayCallRefusal : uint8_t {
  BAD_REQUEST,       // a field of the wrong size, a put over its limits, an envelope of no envelope size
  MAILBOXES_OPEN,    // RELAY_MAILBOXES_OPEN_PER_CONNECTION_MAX mailboxes open on one connection
  WAITING,           // a second waiting get on one Mailbox capability
  CONNECTION_LIMIT,  // refused at the handshake: too many connections (from the address, or in all)
  STORE_FAILED,      // the store failed (the disk): the client may try again later
  COUNT
};
const char* callRefusalName(RelayCallRefusal refusal);

struct RelayServerStats {
  size_t connections = 0;
  size_t handshakes = 0;
  uint64_t connectionsAccepted = 0;
  uint64_t envelopesStored = 0;
  uint64_t envelopesServed = 0;
  std::array<uint64_t, static_cast<size_t>(store::RelayRefusalKind::COUNT)> refusals{};
  std::array<uint64_t, static_cast<size_t>(RelayCallRefusal::COUNT)> callRefusals{};
};

class RelayServer final : private kj::TaskSet::ErrorHandler {
public:
  RelayServer(UvEventPort& port, store::RelayStore& store, const crypto::Identity& identity,
              RelayServerSettings settings, spdlog::logger& log);
  ~RelayServer() noexcept(false);
  KJ_DISALLOW_COPY(RelayServer);

  // Binds the listener (throws with the address when it cannot), accepts, and starts the sweep.
  void start();
  // The bound port (after start()), the OS-chosen one when 0 was asked for.
  uint16_t listenPort() const;
  RelayServerStats stats() const;
  // Called (on the loop) after anything that changes stats() or the store's totals.
  void onChange(std::function<void()> changed) { changed_ = std::move(changed); }

private:
  struct Connection;
  struct Peer;
  class RelayService;
  class MailboxService;
  friend class RelayService;
  friend class MailboxService;

  kj::Promise<void> acceptLoop(unsigned failures);
  kj::Promise<void> sweepLoop();
  void respond(kj::Own<UvStream> stream);
  std::string admitReason(const std::string& address) const;
  void adopt(SecureConnection connection, const std::string& address, const std::string& label);
  void release(const std::string& address);
  // Wakes every waiting get of mailbox `id` (a put, a close or a removal).
  void wake(const Key32& id);
  kj::Promise<void> waitFor(const Key32& id);
  [[noreturn]] void refuse(Peer& peer, const char* call, const Key32* id, store::RelayRefusal refusal);
  [[noreturn]] void refuse(Peer& peer, const char* call, const Key32* id, RelayCallRefusal kind,
                           const std::string& message);
  void logRefusal(Peer& peer, const char* call, const Key32* id, const std::string& message);
  void changed();
  void taskFailed(kj::Exception&& exception) override;

  UvEventPort& port_;
  store::RelayStore& store_;
  const crypto::Identity& identity_;
  RelayServerSettings settings_;
  spdlog::logger& log_;
  std::function<void()> changed_;
  kj::Maybe<kj::Own<UvListener>> listener_;
  std::map<uint64_t, kj::Own<Connection>> connections_;
  std::map<std::string, size_t> perAddress_;  // connections and accepted handshakes, by address
  size_t admitted_ = 0;                       // handshakes accepted but not yet adopted
  std::map<uint64_t, kj::Own<kj::Canceler>> handshakes_;
  uint64_t handshakesDropped_ = 0;
  std::map<Key32, std::vector<kj::Own<kj::PromiseFulfiller<void>>>> waiters_;
  RelayServerStats stats_;
  uint64_t serial_ = 0;
  kj::TaskSet tasks_;
};

}  // namespace kith::node
