#include "node/node.h"

#include <kj/debug.h>

#include <array>
#include <random>

#include "node/invite-pake.h"

namespace kith::node {

std::optional<std::pair<std::string, uint16_t>> parseHostPort(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5) return std::nullopt;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  unsigned long value = std::stoul(port);
  if (value > 65535) return std::nullopt;
  return std::make_pair(host, static_cast<uint16_t>(value));
}

std::string formatHostPort(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Node::Node(UvEventPort& port, Replicator& replicator, NodeOptions options)
    : port_(port), replicator_(replicator), options_(std::move(options)), nextReaderCheck_(port.getTimer().now()),
      tasks_(*this) {}

Node::~Node() noexcept(false) {}

void Node::taskFailed(kj::Exception&& exception) {
  replicator_.log().error("node: {}", exception.getDescription().cStr());
}

uint16_t Node::listenPort() const {
  KJ_IF_MAYBE(l, listener_) { return (*l)->getPort(); }
  return 0;
}

void Node::start() {
  if (options_.listen) {
    listener_ = kj::heap<UvListener>(port_, options_.listen->first.c_str(), options_.listen->second);
    replicator_.log().info("listening on {}", formatHostPort(options_.listen->first, listenPort()));
    tasks_.add(acceptLoop(0));
  }
  for (size_t i = 0; i < options_.peers.size(); ++i) tasks_.add(dialLoop(i, 0));
  std::string dataFile = replicator_.store().dataFile();
  try {
    watch_ = kj::heap<UvFileWatch>(port_, dataFile.c_str());
  } catch (const kj::Exception& e) {
    replicator_.log().warn("cannot watch the store for posts by other kith commands ({}); looking every {} ms instead",
                           e.getDescription().cStr(), STORE_POLL_MS);
  }
  tasks_.add(watchLoop(0));
}

kj::Promise<void> Node::watchLoop(unsigned failures) {
  // Another process's commit writes the data file: the watch wakes us at once. The slow poll is a
  // safety net (a file system that does not report changes); without a watch, poll often.
  kj::Promise<void> next = nullptr;
  if (failures > 0) {
    next = port_.getTimer().afterDelay(loopRetryDelay(failures));
  } else if (publishing_ > 0) {
    // A commit was written but not yet visible to readers: look again in a moment (doubling, in
    // case a writer died just then).
    uint64_t ms = std::min<uint64_t>(uint64_t{STORE_PUBLISH_RECHECK_MS} << std::min(publishing_ - 1, 20u),
                                     STORE_PUBLISH_RECHECK_MAX_MS);
    next = port_.getTimer().afterDelay(ms * kj::MILLISECONDS);
  } else KJ_IF_MAYBE(watch, watch_) {
    next = (*watch)->changed().exclusiveJoin(port_.getTimer().afterDelay(STORE_SAFETY_POLL_MS * kj::MILLISECONDS));
  } else {
    next = port_.getTimer().afterDelay(STORE_POLL_MS * kj::MILLISECONDS);
  }
  return next
      .then([this]() {
        publishing_ = replicator_.pollStore() ? publishing_ + 1 : 0;
        kj::TimePoint now = port_.getTimer().now();
        if (now >= nextReaderCheck_) {
          nextReaderCheck_ = now + STALE_READERS_CHECK_MS * kj::MILLISECONDS;
          if (int freed = replicator_.store().reclaimStaleReaders(); freed > 0) {
            replicator_.log().info("freed {} store reader slot{} left by kith commands that were killed", freed,
                                   freed == 1 ? "" : "s");
          }
        }
      })
      .then([this]() { return watchLoop(0); },
            [this, failures](kj::Exception&& e) {
              logLoopFailure(replicator_.log(), "watching the store", failures + 1, e);
              return watchLoop(failures + 1);
            });
}

void Node::addPeer(const PeerAddress& peer) {
  for (const auto& p : options_.peers) {
    if (p.key == peer.key) return;
  }
  options_.peers.push_back(peer);
  replicator_.log().info("[peer {}] added: dialling {}", shortId(peer.key), formatHostPort(peer.host, peer.port));
  tasks_.add(dialLoop(options_.peers.size() - 1, 0));
}

bool Node::isPeer(const crypto::PublicKey& peer) const {
  for (const auto& p : options_.peers) {
    if (p.key == peer) return true;
  }
  for (const auto& t : options_.trusted) {
    if (t == peer) return true;
  }
  return replicator_.knows(peer);
}

std::string Node::acceptReason(const crypto::PublicKey& peer) const {
  if (isPeer(peer)) {
    if (sessions_.size() >= PEERS_MAX && sessions_.count(peer) == 0) return "this node has too many peers";
    return "";
  }
  // While an invite is open, strangers may connect to redeem it, in their own small pool; they
  // get nothing else.
  // (A full pool makes room by dropping its oldest redeemer: an honest one redeems within a round
  // trip of its handshake; squatters are the old ones.)
  if (replicator_.store().hasOpenInvites(nowMs())) return "";
  return "you are not a member of any journal on this node";
}

void Node::respond(kj::Own<UvStream> stream) {
  std::string from = stream->getPeerName().cStr();
  if (handshakes_.size() >= HANDSHAKES_IN_FLIGHT_MAX) {
    // Make room by dropping the oldest unfinished handshake: an honest peer finishes in one round
    // trip, so the oldest is the one that stalls.
    auto oldest = handshakes_.begin();
    auto canceler = kj::mv(oldest->second);
    handshakes_.erase(oldest);
    canceler->cancel("dropped: too many handshakes at once");
    if (handshakesDropped_++ % HANDSHAKES_DROPPED_LOG_EVERY == 0) {
      replicator_.log().warn("too many handshakes at once ({}): dropped the oldest unfinished one ({} so far)",
                             HANDSHAKES_IN_FLIGHT_MAX, handshakesDropped_);
    }
  }
  uint64_t serial = ++serial_;
  auto canceler = kj::heap<kj::Canceler>();
  // The first frame's length tells a short-code pre-handshake (node/invite-pake.h) from Noise XK
  // message 1; the two bytes read are handed back to the Noise handshake.
  auto header = kj::heap<std::array<uint8_t, 2>>();
  auto& h = *header;
  auto& raw = *stream;
  auto handshake = canceler->wrap(
      port_.getTimer()
          .timeoutAfter(HANDSHAKE_TIMEOUT_MS * kj::MILLISECONDS, raw.tryRead(h.data(), h.size(), h.size()))
          .then([this, stream = kj::mv(stream), header = kj::mv(header),
                 from](size_t got) mutable -> kj::Promise<kj::Maybe<SecureConnection>> {
            if (got < header->size()) {
              return KJ_EXCEPTION(DISCONNECTED, "the peer closed the connection before its first frame");
            }
            uint16_t length = static_cast<uint16_t>((*header)[0] << 8 | (*header)[1]);
            if (classifyFirstFrame(length) == FirstFrame::PAKE) {
              auto& s = *stream;
              return port_.getTimer()
                  .timeoutAfter(HANDSHAKE_TIMEOUT_MS * kj::MILLISECONDS,
                                answerShortCode(s, replicator_.store(), replicator_.identity()))
                  .then([this, from](std::string outcome) -> kj::Maybe<SecureConnection> {
                    replicator_.log().info("[{}] {}", from, outcome);
                    return nullptr;
                  })
                  .attach(kj::mv(stream));
            }
            return secureRespond(
                       prefixedStream(kj::mv(stream), Bytes(header->begin(), header->end())), replicator_.identity(),
                       [this](const crypto::PublicKey& peer) { return acceptReason(peer); }, port_.getTimer())
                .then([](SecureConnection conn) -> kj::Maybe<SecureConnection> { return kj::mv(conn); });
          }));
  handshakes_.emplace(serial, kj::mv(canceler));
  tasks_.add(handshake.then(
      [this, serial](kj::Maybe<SecureConnection> conn) {
        handshakes_.erase(serial);
        KJ_IF_MAYBE(c, conn) { adopt(kj::mv(*c), false); }
      },
      [this, serial, from](kj::Exception&& e) {
        // A dropped handshake was counted (and logged) when it was dropped.
        if (handshakes_.erase(serial) == 0) return;
        replicator_.log().warn("[{}] inbound connection dropped: {}", from, e.getDescription().cStr());
      }));
}

kj::Promise<void> Node::acceptLoop(unsigned failures) {
  KJ_IF_MAYBE(l, listener_) {
    return (*l)->accept().then(
        [this](kj::Own<UvStream> stream) {
          respond(kj::mv(stream));
          return acceptLoop(0);
        },
        [this, failures](kj::Exception&& e) {
          // Out of file descriptors, or the like: the listener stays usable, so wait and go on.
          logLoopFailure(replicator_.log(), "accepting a connection", failures + 1, e);
          return port_.getTimer().afterDelay(loopRetryDelay(failures + 1)).then([this, failures]() {
            return acceptLoop(failures + 1);
          });
        });
  }
  return kj::READY_NOW;
}

kj::Promise<void> Node::dialLoop(size_t index, unsigned attempt) {
  const PeerAddress& peer = options_.peers[index];
  auto label = shortId(peer.key);
  // A session with this peer may exist already (it dialled us): wait for it to end first.
  auto existing = sessions_.find(peer.key);
  kj::Promise<void> before = existing != sessions_.end() ? existing->second.ended.addBranch() : kj::READY_NOW;
  return before
      .then([this, index, label]() {
        const PeerAddress& peer = options_.peers[index];
        return connect(port_, peer.host.c_str(), peer.port).then([this, index](kj::Own<UvStream> stream) {
          const PeerAddress& peer = options_.peers[index];
          return secureInitiate(kj::mv(stream), replicator_.identity(), peer.key, port_.getTimer());
        });
      })
      .then(
          [this](SecureConnection conn) -> kj::Promise<unsigned> {
            const crypto::PublicKey key = conn.remote;
            adopt(kj::mv(conn), true);
            auto it = sessions_.find(key);
            if (it == sessions_.end()) return 0u;
            return it->second.ended.addBranch().then([]() { return 0u; });
          },
          [this, index, attempt, label](kj::Exception&& e) -> kj::Promise<unsigned> {
            const PeerAddress& peer = options_.peers[index];
            if (attempt == 0 || attempt % DIAL_FAILURES_LOG_EVERY == 0) {
              replicator_.log().warn("[peer {}] cannot connect to {}: {}", label, formatHostPort(peer.host, peer.port),
                                     e.getDescription().cStr());
            }
            return attempt + 1;
          })
      .then(
          [this, index](unsigned nextAttempt) {
            // Exponential backoff with jitter; after a session ended, start again from the shortest delay.
            double delay = DIAL_BACKOFF_INITIAL_MS;
            for (unsigned i = 0; i < nextAttempt && delay < DIAL_BACKOFF_MAX_MS; ++i) delay *= 2;
            delay = std::min<double>(delay, DIAL_BACKOFF_MAX_MS);
            static thread_local std::mt19937 rng{std::random_device{}()};
            std::uniform_real_distribution<double> jitter(1 - DIAL_BACKOFF_JITTER, 1 + DIAL_BACKOFF_JITTER);
            auto ms = static_cast<uint64_t>(delay * jitter(rng));
            return port_.getTimer().afterDelay(ms * kj::MILLISECONDS).then([this, index, nextAttempt]() {
              return dialLoop(index, nextAttempt);
            });
          },
          [this, index, attempt](kj::Exception&& e) {
            // Anything else that failed (adopting the session, the store): log, wait, dial again.
            logLoopFailure(replicator_.log(), "dialling a peer", attempt + 1, e);
            return port_.getTimer().afterDelay(loopRetryDelay(attempt + 1)).then([this, index, attempt]() {
              return dialLoop(index, attempt + 1);
            });
          });
}

void Node::adoptRedeemer(SecureConnection connection) {
  auto label = shortId(connection.remote);
  if (redeemers_.size() >= REDEEMERS_MAX) {
    if (redeemersDropped_++ % HANDSHAKES_DROPPED_LOG_EVERY == 0) {
      replicator_.log().warn("too many invite redeemers at once ({}): dropped the oldest ({} so far)", REDEEMERS_MAX,
                             redeemersDropped_);
    }
    redeemers_.erase(redeemers_.begin());
  }
  auto session =
      kj::heap<PeerSession>(replicator_, kj::mv(connection), false, port_.getTimer(), PeerSession::Mode::REDEEMER);
  uint64_t serial = ++serial_;
  replicator_.log().info("[peer {}] connected to redeem an invite", label);
  auto ended =
      session->run()
          .then([]() {},
                [this, label](kj::Exception&& e) {
                  replicator_.log().info("[peer {}] invite redeemer disconnected: {}", label,
                                         e.getDescription().cStr());
                })
          .then([this, serial]() { tasks_.add(kj::evalLater([this, serial]() { redeemers_.erase(serial); })); })
          .eagerlyEvaluate(nullptr);
  redeemers_.emplace(serial, Redeemer{kj::mv(session), kj::mv(ended)});
}

void Node::adopt(SecureConnection connection, bool initiator) {
  const crypto::PublicKey peer = connection.remote;
  // Inbound and no peer of ours: it was let in to redeem an invite.
  if (!initiator && !isPeer(peer)) return adoptRedeemer(kj::mv(connection));
  auto label = shortId(peer);
  auto it = sessions_.find(peer);
  // The handshake checked the limit, but another handshake may have finished since.
  if (it == sessions_.end() && sessions_.size() >= PEERS_MAX) {
    replicator_.log().warn("[peer {}] dropped: this node has too many peers ({})", label, PEERS_MAX);
    return;
  }
  if (it != sessions_.end()) {
    // Keep the connection whose initiator has the smaller key; with the same initiator, the newer.
    const crypto::PublicKey& me = replicator_.identity().publicKey();
    const crypto::PublicKey& oldInitiator = it->second.session->initiator() ? me : peer;
    const crypto::PublicKey& newInitiator = initiator ? me : peer;
    if (oldInitiator != newInitiator && oldInitiator < newInitiator) {
      replicator_.log().info("[peer {}] already connected; dropping the second connection", label);
      return;  // the new connection is dropped with `connection`
    }
    replicator_.log().info("[peer {}] replacing the existing connection", label);
    sessions_.erase(it);
  }
  auto session = kj::heap<PeerSession>(replicator_, kj::mv(connection), initiator, port_.getTimer());
  auto canceler = kj::heap<kj::Canceler>();
  uint64_t serial = ++serial_;
  replicator_.log().info("[peer {}] connected ({})", label, initiator ? "outbound" : "inbound");
  lastSeen_[peer] = nowMs();
  changed();
  auto ended = canceler->wrap(session->run())
                   .then([]() -> kj::Promise<void> { return kj::READY_NOW; },
                         [this, label](kj::Exception&& e) {
                           replicator_.log().info("[peer {}] disconnected: {}", label, e.getDescription().cStr());
                         })
                   .then([this, peer, serial]() {
                     // Drop the session later, not from inside its own promise chain.
                     tasks_.add(kj::evalLater([this, peer, serial]() {
                       auto it = sessions_.find(peer);
                       if (it != sessions_.end() && it->second.serial == serial) sessions_.erase(it);
                       lastSeen_[peer] = nowMs();
                       changed();
                     }));
                   })
                   .fork();
  sessions_.emplace(peer, Live{kj::mv(session), kj::mv(canceler), kj::mv(ended), serial});
  tasks_.add(sessions_.find(peer)->second.ended.addBranch());
}

std::vector<PeerState> Node::peerStates() const {
  std::vector<PeerState> out;
  for (const auto& [key, seen] : lastSeen_) {
    bool connected = sessions_.count(key) != 0;
    out.push_back(PeerState{key, connected, connected ? nowMs() : seen});
  }
  return out;
}

void Node::changed() {
  if (onChange_) onChange_();
}

}  // namespace kith::node
