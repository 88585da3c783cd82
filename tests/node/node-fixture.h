// Shared fixtures for the node layer's in-process tests (transport, replication, convergence):
// full nodes on one UvIoContext, a waiting helper that runs the event loop until a condition holds,
// a TCP proxy that counts, records and corrupts bytes, a raw RPC client, and a digest of a
// journal's entries for comparing replicas.
//
// Everything here runs on the test's thread and event loop. Declare the UvIoContext before any
// TestNode, TcpProxy or RpcPeer, so that it is destroyed after them.
#pragma once

#include <sodium.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async.h>
#include <kj/debug.h>

#include "node/node.h"
#include "node/replicator.h"
#include "node/secure-stream.h"
#include "node/session.h"
#include "node/uv/uv-stream.h"
#include "store/journal.h"
#include "store/store.h"
#include "tests/support/seed.h"
#include "tests/support/temp-dir.h"

namespace kith::node::test {

using kith::test::TempDir;

// How long a test waits for something that must happen; generous, for ASan and a busy machine.
constexpr kj::Duration WAIT_DEADLINE = 30 * kj::SECONDS;
constexpr kj::Duration WAIT_POLL_INTERVAL = 10 * kj::MILLISECONDS;

// The seed of a randomised test (tests/support/seed.h): KITH_TEST_SEED replays one.
using kith::test::testSeed;

// ---------------------------------------------------------------------------------------------
// Logging: every node logs into its own capture (tests look for reasons there); set
// KITH_TEST_LOG=1 to see the lines on stderr as well.

class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit CaptureSink(std::string name) : name_(std::move(name)) {
    const char* env = std::getenv("KITH_TEST_LOG");
    echo_ = env != nullptr && *env != '\0' && *env != '0';
  }

  // True when a line logged so far contains `needle`.
  bool contains(const std::string& needle) {
    std::lock_guard<std::mutex> lock(linesMutex_);
    for (const auto& line : lines_) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(linesMutex_);
    return lines_;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string line(msg.payload.data(), msg.payload.size());
    if (echo_) std::fprintf(stderr, "[%s] %s\n", name_.c_str(), line.c_str());
    std::lock_guard<std::mutex> lock(linesMutex_);
    if (lines_.size() >= LINES_MAX) lines_.erase(lines_.begin(), lines_.begin() + LINES_MAX / 2);
    lines_.push_back(std::move(line));
  }
  void flush_() override {}

private:
  static constexpr size_t LINES_MAX = 20000;
  std::string name_;
  bool echo_ = false;
  std::mutex linesMutex_;
  std::vector<std::string> lines_;
};

// ---------------------------------------------------------------------------------------------
// Waiting: run the event loop until a condition holds (polled every WAIT_POLL_INTERVAL) or the
// deadline passes. Never a sleep: the loop keeps serving every node while it waits.

inline kj::Promise<bool> pollUntil(kj::Timer& timer, std::shared_ptr<std::function<bool()>> done, kj::TimePoint end) {
  if ((*done)()) return true;
  if (timer.now() >= end) return false;
  return timer.afterDelay(WAIT_POLL_INTERVAL).then([&timer, done, end]() { return pollUntil(timer, done, end); });
}

inline bool waitFor(UvIoContext& io, std::function<bool()> done, kj::Duration limit = WAIT_DEADLINE) {
  auto& timer = io.getTimer();
  return pollUntil(timer, std::make_shared<std::function<bool()>>(std::move(done)), timer.now() + limit)
      .wait(io.getWaitScope());
}

// Lets the loop run for `delay` (for the randomised schedule; never to wait for a result).
inline void runFor(UvIoContext& io, kj::Duration delay) { io.getTimer().afterDelay(delay).wait(io.getWaitScope()); }

// Waits for `promise`, failing (not hanging) after `limit`.
template <typename T>
T waitWithin(UvIoContext& io, kj::Promise<T> promise, kj::Duration limit = WAIT_DEADLINE) {
  return io.getTimer().timeoutAfter(limit, kj::mv(promise)).wait(io.getWaitScope());
}

// A promise's value or its exception's description, so that both sides of a connection can be
// awaited together and checked afterwards.
template <typename T>
struct Settled {
  std::optional<T> value;
  std::string error;  // the exception's description when it rejected
  bool ok() const { return value.has_value(); }
};

template <typename T>
kj::Promise<Settled<T>> settle(kj::Promise<T> promise) {
  return promise.then(
      [](T value) {
        Settled<T> s;
        s.value.emplace(kj::mv(value));
        return s;
      },
      [](kj::Exception&& e) {
        Settled<T> s;
        s.error = e.getDescription().cStr();
        return s;
      });
}

inline kj::Promise<std::string> settleVoid(kj::Promise<void> promise) {
  // "" when it resolved, else the exception's description (never empty for a rejection).
  return promise.then([]() { return std::string(); },
                      [](kj::Exception&& e) {
                        std::string what = e.getDescription().cStr();
                        return what.empty() ? std::string("(exception without a description)") : what;
                      });
}

// ---------------------------------------------------------------------------------------------
// A full node: its own home (TempDir), identity, at-rest key, store, replicator and logger, and a
// Node that start() and stop() make and destroy (the store and replicator stay, as across a restart
// of `kith serve` whose home persists). reopen() closes and reopens the store itself.

class TestNode {
public:
  TestNode(UvIoContext& io, std::string name)
      : name(std::move(name)), io_(io), identity(crypto::Identity::generate()),
        storageKey(identity.deriveKey("kithstor", 1)), sink(std::make_shared<CaptureSink>(this->name)),
        log(std::make_shared<spdlog::logger>(this->name, sink)) {
    log->set_level(spdlog::level::debug);
    open();
  }
  ~TestNode() { close(); }
  TestNode(const TestNode&) = delete;
  TestNode& operator=(const TestNode&) = delete;

  const PublicKey& key() const { return identity.publicKey(); }
  store::Keyring keyring() const { return {identity, storageKey.view()}; }
  bool running() const { return node != nullptr; }

  // Listens on 127.0.0.1 (the port it had before, or an OS-chosen one the first time), dials
  // `peers`, accepts `trusted` besides members.
  void start() {
    KJ_REQUIRE(node == nullptr, "already running");
    NodeOptions options;
    options.listen = std::make_pair(std::string("127.0.0.1"), port);
    options.peers = peers;
    options.trusted = trusted;
    node = std::make_unique<Node>(io_.getPort(), *replicator, options);
    node->start();
    port = node->listenPort();
  }
  void stop() { node.reset(); }

  // Closes and reopens the store and replicator (the node must be stopped).
  void reopen() {
    KJ_REQUIRE(node == nullptr, "stop the node before reopening its store");
    close();
    open();
  }

  void dial(const TestNode& other) { dial(other.port, other.key()); }
  void dial(uint16_t otherPort, const PublicKey& otherKey) {
    KJ_REQUIRE(otherPort != 0, "start the other node once first, so that its port is known");
    peers.push_back({"127.0.0.1", otherPort, otherKey});
  }
  // Follows `journal` from the peer `from` (what `kith follow JOURNAL --key FROM` records), or,
  // without `from`, from any peer this node trusts.
  void follow(const JournalId& journal, std::optional<PublicKey> from = std::nullopt) { follows[journal] = from; }

  bool holds(const JournalId& journal) const { return store->journal(journal).has_value(); }
  VersionVector heads(const JournalId& journal) const { return store->versionVector(journal); }
  uint64_t headOf(const JournalId& journal, const PublicKey& author) const {
    auto h = store->head(journal, author);
    return h ? h->seq : 0;
  }

  // An update, or a comment or heart on `refs` (which those need).
  protocol::Entry post(const JournalId& journal, const std::string& text, protocol::Kind kind = protocol::Kind::UPDATE,
                       std::vector<protocol::EntryId> refs = {}) {
    auto ring = keyring();
    return store::post(*store, ring, journal, protocol::Body{kind, text, std::move(refs)});
  }

  // Appends `count` posts of about 200 bytes (`padBytes` of padding each) in few write
  // transactions (store::post commits each one, which is slow for hundreds); returns them in order.
  std::vector<protocol::Entry> postMany(const JournalId& journal, size_t count, const std::string& prefix,
                                        protocol::Kind kind = protocol::Kind::UPDATE, size_t padBytes = 180) {
    auto info = store->journal(journal);
    KJ_REQUIRE(info.has_value(), "the journal is not held here");
    auto epochKey = store->epochKey(journal, info->epoch, storageKey.view());
    KJ_REQUIRE(epochKey.has_value(), "no key for the current epoch");
    auto head = store->head(journal, key());
    protocol::EntryDraft draft;
    draft.journal = journal;
    draft.seq = head ? head->seq + 1 : 1;
    if (head) draft.prev = head->id;
    draft.epoch = info->epoch;
    std::vector<protocol::Entry> entries;
    for (size_t i = 0; i < count; ++i) {
      draft.timestampMs = nowMs();
      draft.body = protocol::Body{kind, prefix + " #" + std::to_string(i) + " " + std::string(padBytes, 'x'), {}};
      entries.push_back(protocol::signEntry(identity, draft, epochKey->view()));
      draft.prev = entries.back().id;
      ++draft.seq;
    }
    auto ring = keyring();
    for (size_t from = 0; from < entries.size(); from += store::APPEND_BATCH_MAX) {
      size_t to = std::min(entries.size(), from + store::APPEND_BATCH_MAX);
      std::vector<protocol::Entry> chunk(entries.begin() + static_cast<std::ptrdiff_t>(from),
                                         entries.begin() + static_cast<std::ptrdiff_t>(to));
      for (const auto& outcome : store->appendBatch(chunk, &ring)) {
        KJ_REQUIRE(outcome.status == store::AppendStatus::ADDED, outcome.message.c_str());
      }
    }
    return entries;
  }

  const std::string name;

private:
  UvIoContext& io_;

  void open() {
    store = store::Store::open(dir.path());
    replicator = std::make_unique<Replicator>(*store, identity, storageKey.view(), *log,
                                              [this](const JournalId& j, const PublicKey& peer) {
                                                auto it = follows.find(j);
                                                if (it == follows.end()) return false;
                                                if (it->second) return *it->second == peer;
                                                return std::find(trusted.begin(), trusted.end(), peer) != trusted.end();
                                              });
  }
  void close() {
    node.reset();
    replicator.reset();
    store.reset();
  }

public:
  TempDir dir;
  crypto::Identity identity;
  crypto::SecretBuffer storageKey;
  std::shared_ptr<CaptureSink> sink;
  std::shared_ptr<spdlog::logger> log;
  std::map<JournalId, std::optional<PublicKey>> follows;
  std::vector<PeerAddress> peers;
  std::vector<PublicKey> trusted;
  uint16_t port = 0;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Replicator> replicator;
  std::unique_ptr<Node> node;
};

// ---------------------------------------------------------------------------------------------
// Comparing replicas: a digest over every entry of a journal, in (author, seq) order.

struct JournalDigest {
  bool held = false;
  uint64_t entries = 0;
  std::string hash;  // hex BLAKE2b-256 over (length || packed entry) for each entry
  bool operator==(const JournalDigest& other) const {
    return held == other.held && entries == other.entries && hash == other.hash;
  }
};

inline JournalDigest digest(const store::Store& store, const JournalId& journal) {
  JournalDigest out;
  if (!store.journal(journal)) return out;
  out.held = true;
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 32);
  for (const auto& [author, last] : store.versionVector(journal)) {
    crypto_generichash_update(&state, author.data(), author.size());
    uint64_t from = 1;
    while (from <= last) {
      auto batch = store.rangePacked(journal, author, from, store::RANGE_LIMIT_MAX, size_t{1} << 40);
      if (batch.empty()) break;
      for (const Bytes& packed : batch) {
        Bytes length;
        putU64(length, packed.size());
        crypto_generichash_update(&state, length.data(), length.size());
        crypto_generichash_update(&state, packed.data(), packed.size());
        ++out.entries;
      }
      from += batch.size();
    }
  }
  Key32 hash;
  crypto_generichash_final(&state, hash.data(), hash.size());
  out.hash = toHex(hash);
  return out;
}

// The total bytes of the packed entries of `author` in `journal` from `fromSeq` to `toSeq`.
inline size_t packedBytes(const store::Store& store, const JournalId& journal, const PublicKey& author,
                          uint64_t fromSeq, uint64_t toSeq) {
  size_t total = 0;
  for (uint64_t seq = fromSeq; seq <= toSeq;) {
    auto batch = store.rangePacked(journal, author, seq, store::RANGE_LIMIT_MAX, size_t{1} << 40);
    if (batch.empty()) break;
    for (const Bytes& p : batch) {
      if (seq > toSeq) break;
      total += p.size();
      ++seq;
    }
  }
  return total;
}

// Copies every entry of `journal` that `from` holds into `to`'s store (the owner's chain first, as
// replication does), as if `to` had replicated it: for tests that need a member to hold a journal
// before its node starts, without a session doing it.
inline void copyJournal(const TestNode& from, TestNode& to, const JournalId& journal) {
  auto info = from.store->journal(journal);
  KJ_REQUIRE(info.has_value(), "the journal is not held there");
  auto heads = from.store->versionVector(journal);
  std::vector<PublicKey> authors{info->owner};
  for (const auto& [author, last] : heads) {
    if (author != info->owner) authors.push_back(author);
  }
  auto ring = to.keyring();
  for (const auto& author : authors) {
    uint64_t last = heads.count(author) ? heads[author] : 0;
    for (uint64_t seq = 1; seq <= last;) {
      auto packed = from.store->rangePacked(journal, author, seq, store::APPEND_BATCH_MAX, size_t{1} << 40);
      if (packed.empty()) break;
      std::vector<protocol::Entry> entries;
      for (const Bytes& p : packed) entries.push_back(protocol::decodePackedEntry(p));
      for (const auto& outcome : to.store->appendBatch(entries, &ring)) {
        KJ_REQUIRE(outcome.status != store::AppendStatus::REJECTED, outcome.message.c_str());
      }
      seq += packed.size();
    }
  }
}

// One `kith sync` round: `client` dials `listener`, on which `server` answers as a node does; the
// client syncs every journal they share and reports progress to `onProgress`. `dialPort` (a proxy
// in front of the listener) is dialled instead of the listener's when set.
inline std::vector<SyncProgress> syncFrom(UvIoContext& io, UvListener& listener, TestNode& server, TestNode& client,
                                          std::function<void(const SyncProgress&)> onProgress, uint16_t dialPort = 0) {
  auto& port = io.getPort();
  kj::Maybe<kj::Own<PeerSession>> serving;
  auto accepted =
      listener.accept()
          .then([&](kj::Own<UvStream> s) {
            return secureRespond(
                kj::mv(s), server.identity, [](const crypto::PublicKey&) { return std::string(); }, port.getTimer());
          })
          .then([&](SecureConnection conn) {
            serving = kj::heap<PeerSession>(*server.replicator, kj::mv(conn), false, port.getTimer());
          })
          .eagerlyEvaluate(nullptr);
  auto results = waitWithin(io, connect(port, "127.0.0.1", dialPort != 0 ? dialPort : listener.getPort())
                                    .then([&](kj::Own<UvStream> s) {
                                      return secureInitiate(kj::mv(s), client.identity, server.key(), port.getTimer());
                                    })
                                    .then([&](SecureConnection conn) {
                                      auto session = kj::heap<PeerSession>(*client.replicator, kj::mv(conn), true,
                                                                           port.getTimer());
                                      auto promise = session->sync(std::move(onProgress));
                                      return promise.attach(kj::mv(session));
                                    }));
  serving = nullptr;
  return results;
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy on 127.0.0.1 that forwards every connection it accepts to `target`, counting the
// bytes each way, optionally recording them (first connection) and flipping one bit at a chosen
// offset of one direction (first connection). When one side ends its half, the proxy ends the
// same half towards the other side; when a side fails, the proxy drops both.

class TcpProxy final : private kj::TaskSet::ErrorHandler {
public:
  struct Flip {
    bool toServer = true;  // in the client → server direction (else server → client)
    uint64_t offset = 0;   // byte offset within that direction's stream
    uint8_t mask = 0x01;
  };

  TcpProxy(UvEventPort& port, uint16_t target, std::optional<Flip> flip = std::nullopt, bool capture = false)
      : port_(port), target_(target), flip_(flip), capture_(capture), listener_(port, "127.0.0.1", 0), tasks_(*this) {
    tasks_.add(acceptLoop());
  }

  uint16_t port() const { return listener_.getPort(); }
  uint64_t bytes(bool toServer) const { return totals_[toServer ? 1 : 0]; }
  bool flipped() const { return flipped_; }
  const Bytes& captured(bool toServer) const { return captured_[toServer ? 1 : 0]; }
  size_t connections() const { return connections_; }
  size_t openConnections() const { return open_; }

private:
  struct Conn {
    size_t index = 0;
    kj::Own<UvStream> client;
    kj::Own<UvStream> server;
    uint64_t offset[2] = {0, 0};
    kj::Array<kj::byte> buffer[2] = {kj::heapArray<kj::byte>(64 * 1024), kj::heapArray<kj::byte>(64 * 1024)};
    kj::Own<kj::PromiseFulfiller<void>> abort;
  };

  void taskFailed(kj::Exception&& exception) override {
    // A failed forwarding ends that connection only; failures are the point of some tests.
    (void)exception;
  }

  kj::Promise<void> acceptLoop() {
    return listener_.accept().then([this](kj::Own<UvStream> client) {
      size_t index = connections_++;
      tasks_.add(connect(port_, "127.0.0.1", target_)
                     .then([this, index, client = kj::mv(client)](kj::Own<UvStream> server) mutable {
                       auto conn = kj::heap<Conn>();
                       conn->index = index;
                       conn->client = kj::mv(client);
                       conn->server = kj::mv(server);
                       return forward(kj::mv(conn));
                     }));
      return acceptLoop();
    });
  }

  kj::Promise<void> forward(kj::Own<Conn> conn) {
    ++open_;
    auto abort = kj::newPromiseAndFulfiller<void>();
    conn->abort = kj::mv(abort.fulfiller);
    auto both = kj::joinPromises(kj::arr(pump(*conn, true), pump(*conn, false)));
    return both.exclusiveJoin(kj::mv(abort.promise)).attach(kj::mv(conn), kj::defer([this]() { --open_; }));
  }

  kj::Promise<void> pump(Conn& conn, bool toServer) {
    int dir = toServer ? 1 : 0;
    UvStream& from = toServer ? *conn.client : *conn.server;
    UvStream& to = toServer ? *conn.server : *conn.client;
    auto& buffer = conn.buffer[dir];
    return from.tryRead(buffer.begin(), 1, buffer.size())
        .then([this, &conn, &to, &buffer, toServer, dir](size_t n) -> kj::Promise<void> {
          if (n == 0) {
            to.shutdownWrite();
            return kj::READY_NOW;
          }
          uint64_t start = conn.offset[dir];
          if (conn.index == 0 && flip_ && flip_->toServer == toServer && flip_->offset >= start &&
              flip_->offset < start + n) {
            buffer[flip_->offset - start] ^= flip_->mask;
            flipped_ = true;
          }
          if (capture_ && conn.index == 0)
            captured_[dir].insert(captured_[dir].end(), buffer.begin(), buffer.begin() + n);
          conn.offset[dir] += n;
          totals_[dir] += n;
          return to.write(buffer.begin(), n).then([this, &conn, toServer]() { return pump(conn, toServer); });
        })
        .catch_([&conn](kj::Exception&&) {
          // One side failed (reset, broken pipe): drop both, as a router would.
          if (conn.abort->isWaiting()) conn.abort->fulfill();
        });
  }

  UvEventPort& port_;
  uint16_t target_;
  std::optional<Flip> flip_;
  bool capture_;
  bool flipped_ = false;
  uint64_t totals_[2] = {0, 0};
  Bytes captured_[2];
  size_t connections_ = 0;
  size_t open_ = 0;
  UvListener listener_;
  kj::TaskSet tasks_;
};

// ---------------------------------------------------------------------------------------------
// A raw RPC connection to a node, for tests that call its capabilities directly (custom sinks,
// refused capabilities). It serves `bootstrap` to the other side, as a node does.

class RpcPeer {
public:
  RpcPeer(SecureConnection connection, capnp::Capability::Client bootstrap, bool initiator)
      : connection_(kj::mv(connection)), network_(*connection_.stream, initiator ? capnp::rpc::twoparty::Side::CLIENT
                                                                                 : capnp::rpc::twoparty::Side::SERVER),
        rpc_(capnp::makeRpcServer(network_, kj::mv(bootstrap))) {
    capnp::MallocMessageBuilder message;
    auto vatId = message.initRoot<capnp::rpc::twoparty::VatId>();
    vatId.setSide(initiator ? capnp::rpc::twoparty::Side::SERVER : capnp::rpc::twoparty::Side::CLIENT);
    remote = rpc_.bootstrap(vatId).castAs<rpc::Node>();
  }

  rpc::Journal::Client journal(const JournalId& id) {
    auto req = remote.journalRequest();
    req.setId(kj::arrayPtr(id.data(), id.size()));
    return req.send().getJournal();
  }

  const SecureConnection& connection() const { return connection_; }

private:
  SecureConnection connection_;
  capnp::TwoPartyVatNetwork network_;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc_;

public:
  rpc::Node::Client remote = nullptr;
};

// Dials `target` (a running node) as `me`, serving me's replicator as bootstrap.
inline kj::Own<RpcPeer> dialRpc(UvIoContext& io, TestNode& me, uint16_t targetPort, const PublicKey& targetKey) {
  auto& port = io.getPort();
  auto conn = waitWithin(io, connect(port, "127.0.0.1", targetPort).then([&](kj::Own<UvStream> stream) {
    return secureInitiate(kj::mv(stream), me.identity, targetKey, port.getTimer());
  }));
  return kj::heap<RpcPeer>(kj::mv(conn), me.replicator->nodeFor(targetKey), true);
}

}  // namespace kith::node::test
