// The running node (`kith serve`): listens for peers, dials the known ones with exponential
// backoff and jitter, keeps one live PeerSession per peer, and watches the store for entries
// written by other processes (`kith post`) so that connected members get them at once.
//
// Threading: the loop thread only.
// Caveats:
// - A peer is accepted at the handshake only if it is a configured peer, an active member of a
//   journal held here, or the owner of a followed journal; anyone else is refused with a reason.
// - Two connections with the same peer (both dialled at once) are resolved the same way on both
//   sides: the one whose initiator has the smaller key stays.
// - Destroy the Node before the Replicator and the event port.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/session.h"
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

private:
  struct Entry;
  kj::Promise<void> acceptLoop(unsigned failures);
  kj::Promise<void> dialLoop(size_t index, unsigned attempt);
  kj::Promise<void> pollLoop(unsigned failures);
  void adopt(SecureConnection connection, bool initiator);
  std::string acceptReason(const crypto::PublicKey& peer) const;
  void taskFailed(kj::Exception&& exception) override;

  UvEventPort& port_;
  Replicator& replicator_;
  NodeOptions options_;
  kj::Maybe<kj::Own<UvListener>> listener_;
  // Members are destroyed in reverse order: the canceler first (it cancels the session's run()
  // inside `ended`, which other tasks may still wait on), then the session itself.
  struct Live {
    kj::Own<PeerSession> session;
    kj::Own<kj::Canceler> canceler;
    kj::ForkedPromise<void> ended;
    uint64_t serial;
  };
  std::map<crypto::PublicKey, Live> sessions_;
  uint64_t serial_ = 0;
  kj::TimePoint nextReaderCheck_;
  kj::TaskSet tasks_;
};

}  // namespace kith::node
