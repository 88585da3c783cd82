// The running node (`kith serve`): listens for peers, dials the known ones with exponential
// backoff and jitter, keeps one live PeerSession per peer, and watches the store's data file for
// commits by other processes (`kith post`, `kith grant`) so that connected members get them at
// once. Idle, it sleeps: no timer runs more often than STORE_SAFETY_POLL_MS.
//
// Threading: the loop thread only.
// Caveats:
// - A peer is accepted at the handshake only if it is a configured peer, an active member of a
//   journal held here, or the owner of a followed journal (at most PEERS_MAX sessions). While an
//   invite is open, a key that is none of these is accepted as a redeemer: its own pool of at
//   most REDEEMERS_MAX (a new one drops the oldest), served nothing but redeemInvite, closed soon
//   after. Anyone else is refused with a reason.
// - At most HANDSHAKES_IN_FLIGHT_MAX inbound handshakes run at once; a new connection beyond
//   that drops the oldest unfinished one.
// - Two connections with the same peer (both dialled at once) are resolved the same way on both
//   sides: the one whose initiator has the smaller key stays.
// - Destroy the Node before the Replicator and the event port.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/session.h"
#include "node/uv/uv-file-watch.h"
#include "node/uv/uv-stream.h"

namespace kith::node {

struct PeerAddress {
  std::string host;
  uint16_t port = 0;
  crypto::PublicKey key{};
};

// Parses "HOST:PORT" or "[IPV6]:PORT"; nullopt when malformed.
std::optional<std::pair<std::string, uint16_t>> parseHostPort(const std::string& text);
std::string formatHostPort(const std::string& host, uint16_t port);

struct NodeOptions {
  std::optional<std::pair<std::string, uint16_t>> listen;  // nullopt: do not listen
  std::vector<PeerAddress> peers;                          // dialled and kept connected
  std::vector<crypto::PublicKey> trusted;                  // accepted besides members (followed owners)
};

// A peer this node was connected with since it started, for `kith status`.
struct PeerState {
  crypto::PublicKey key{};
  bool connected = false;
  int64_t lastSeenMs = 0;  // now while connected; else when the connection ended
};

class Node final : private kj::TaskSet::ErrorHandler {
public:
  Node(UvEventPort& port, Replicator& replicator, NodeOptions options);
  ~Node() noexcept(false);
  KJ_DISALLOW_COPY(Node);

  // Binds the listener (throws with the address when it cannot) and starts dialling and polling.
  void start();
  // The bound port (after start()), the OS-chosen one when 0 was asked for.
  uint16_t listenPort() const;
  size_t sessionCount() const { return sessions_.size(); }
  size_t redeemerCount() const { return redeemers_.size(); }
  size_t handshakeCount() const { return handshakes_.size(); }
  // Inbound handshakes dropped so far because the pool was full.
  uint64_t handshakesDropped() const { return handshakesDropped_; }
  // The peers connected now or since the node started (at most PEERS_MAX connected at once).
  std::vector<PeerState> peerStates() const;
  // Dials `peer` too from now on and keeps it connected, unless it is a configured peer already
  // (by key); for a journal joined while the node runs (`kith accept` from the web page).
  void addPeer(const PeerAddress& peer);
  // Called when a peer connects or disconnects.
  void setOnChange(std::function<void()> onChange) { onChange_ = std::move(onChange); }

private:
  struct Entry;
  kj::Promise<void> acceptLoop(unsigned failures);
  kj::Promise<void> dialLoop(size_t index, unsigned attempt);
  kj::Promise<void> watchLoop(unsigned failures);
  void adopt(SecureConnection connection, bool initiator);
  void adoptRedeemer(SecureConnection connection);
  // A configured peer, a followed journal's owner, or an active member of a journal held here.
  bool isPeer(const crypto::PublicKey& peer) const;
  std::string acceptReason(const crypto::PublicKey& peer) const;
  void respond(kj::Own<UvStream> stream);
  void taskFailed(kj::Exception&& exception) override;
  void changed();

  UvEventPort& port_;
  Replicator& replicator_;
  NodeOptions options_;
  kj::Maybe<kj::Own<UvListener>> listener_;
  kj::Maybe<kj::Own<UvFileWatch>> watch_;  // the store's data file (another process's commits)
  // Members are destroyed in reverse order: the canceler first (it cancels the session's run()
  // inside `ended`, which other tasks may still wait on), then the session itself.
  struct Live {
    kj::Own<PeerSession> session;
    kj::Own<kj::Canceler> canceler;
    kj::ForkedPromise<void> ended;
    uint64_t serial;
  };
  std::map<crypto::PublicKey, Live> sessions_;
  // Invite redeemers, by serial. `ended` is destroyed first (it may be what runs the session).
  struct Redeemer {
    kj::Own<PeerSession> session;
    kj::Promise<void> ended;
  };
  std::map<uint64_t, Redeemer> redeemers_;
  // Inbound handshakes in progress, by serial (oldest first); cancelling one drops its connection.
  std::map<uint64_t, kj::Own<kj::Canceler>> handshakes_;
  uint64_t handshakesDropped_ = 0;
  uint64_t redeemersDropped_ = 0;
  uint64_t serial_ = 0;
  std::map<crypto::PublicKey, int64_t> lastSeen_;  // every peer adopted since start (bounded by who may connect)
  std::function<void()> onChange_;
  kj::TimePoint nextReaderCheck_;
  unsigned publishing_ = 0;  // consecutive looks that found a commit written but not yet visible
  kj::TaskSet tasks_;
};

}  // namespace kith::node
