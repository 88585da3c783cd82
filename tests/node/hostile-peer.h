// The hostile-peer harness (tests/node/hostile-*-test.cpp): what a misbehaving peer needs to attack
// an in-process node over real TCP on loopback, the real Noise transport and Cap'n Proto RPC, and
// how a test measures what the attack cost the node.
//
// - Memory: the process's resident set (VmRSS in /proc/self/status). The serving node lives in the
//   test process; the hostile clients are kept cheap (raw sockets, a handshake that keeps only its
//   socket, a stream that never reads), so that the growth measured is the server's.
// - Clients: a deaf RPC client (its stream never reads its socket, so every answer piles up on the
//   server), a cheap handshake (Noise XK to the end, then nothing more), raw sockets that send
//   nothing or half a handshake frame.
// - Observers: a Node capability that records what a node calls on it (a spy standing in for a
//   removed member, or a non-member that claims a journal), served on a listener of its own.
//
// Everything runs on the test's thread and event loop, as tests/node/node-fixture.h does. Declare
// the UvIoContext first, so that it is destroyed last.
#pragma once

#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/noise.h"
#include "protocol/invite.h"
#include "tests/node/node-fixture.h"

namespace kith::node::test {

constexpr size_t MIB = size_t{1} << 20;

// ---------------------------------------------------------------------------------------------
// Memory

#if defined(__SANITIZE_ADDRESS__)
#define KITH_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KITH_TEST_ASAN 1
#endif
#endif

#ifdef KITH_TEST_ASAN
extern "C" void __sanitizer_purge_allocator();
// AddressSanitizer's shadow memory and redzones: the same live memory shows as more resident set.
constexpr size_t RSS_BOUND_SCALE = 2;
#else
constexpr size_t RSS_BOUND_SCALE = 1;
#endif

// A memory bound of a hostile test, scaled for the build it runs in.
constexpr size_t rssBound(size_t bytes) { return bytes * RSS_BOUND_SCALE; }

// Gives memory that was freed back to the system (glibc keeps it in its arenas, AddressSanitizer
// in its quarantine), so that the resident set measures what is live: memory freed by an earlier
// test or an earlier turn is then not reused unseen, and memory freed at once is not counted.
inline void releaseFreedMemory() {
#ifdef KITH_TEST_ASAN
  __sanitizer_purge_allocator();
#else
  ::malloc_trim(0);
#endif
}

// The process's resident set in bytes (VmRSS), 0 when /proc cannot be read.
inline size_t residentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      size_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

inline size_t trimmedResidentBytes() {
  releaseFreedMemory();
  return residentBytes();
}

// Growth of the resident set (after releaseFreedMemory) over a baseline taken when the test says the warm-up is done;
// keeps the largest growth seen by sample().
class RssWatch {
public:
  RssWatch() : base_(trimmedResidentBytes()) { REQUIRE(base_ > 0); }
  size_t base() const { return base_; }
  size_t sample() {
    size_t now = trimmedResidentBytes();
    size_t growth = now > base_ ? now - base_ : 0;
    peak_ = std::max(peak_, growth);
    return growth;
  }
  size_t peakGrowth() const { return peak_; }
  double peakMiB() const { return static_cast<double>(peak_) / MIB; }
  double baseMiB() const { return static_cast<double>(base_) / MIB; }

private:
  size_t base_;
  size_t peak_ = 0;
};

// Prints a figure of a hostile test to stderr, so that a run records it whether it passes or not.
inline void report(const std::string& test, const std::string& what) {
  std::fprintf(stderr, "hostile: %s: %s\n", test.c_str(), what.c_str());
}

inline std::string mib(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / MIB);
  return text;
}

// Raises the soft limit of open files to the hard one (a test that holds thousands of sockets).
inline size_t raiseFileLimit() {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
  }
  return limit.rlim_cur;
}

// ---------------------------------------------------------------------------------------------
// Nodes and journals

// `node` follows `journal`, owned by `owner`, and dials `via`.
inline void followVia(TestNode& node, const JournalId& journal, const TestNode& owner, const TestNode& via) {
  node.follow(journal);
  node.trusted.push_back(owner.key());
  node.dial(via);
}

// An open invite to `journal` on `owner`'s store, expiring at `expiresMs`; returns its secret.
inline Bytes putInvite(TestNode& owner, const JournalId& journal, int64_t expiresMs,
                       protocol::Role role = protocol::Role::SUBSCRIBER) {
  Bytes secret(protocol::INVITE_SECRET_BYTES);
  randombytes_buf(secret.data(), secret.size());
  store::Invite invite;
  invite.id = protocol::inviteId(secret);
  invite.journal = journal;
  invite.role = role;
  invite.createdMs = nowMs();
  invite.expiresMs = expiresMs;
  owner.store->putInvite(invite);
  return secret;
}

// The size of the store's data file (what a flood of stored rows makes grow).
inline uintmax_t storeFileBytes(const TestNode& node) {
  return std::filesystem::file_size(std::filesystem::path(node.dir.path()) / "data.mdb");
}

// ---------------------------------------------------------------------------------------------
// A stream that never reads: every tryRead() stays pending for ever, so the socket under it is never
// drained past its read backlog (UV_READ_BACKLOG_BYTES_MAX) and whatever the other side sends piles
// up there. Writes go through.

class DeafStream final : public kj::AsyncIoStream {
public:
  explicit DeafStream(kj::Own<kj::AsyncIoStream> inner) : inner_(kj::mv(inner)) {}

  kj::Promise<size_t> tryRead(void*, size_t, size_t) override { return kj::NEVER_DONE; }
  kj::Promise<void> write(const void* buffer, size_t size) override { return inner_->write(buffer, size); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner_->getsockopt(level, option, value, length);
  }
  void getpeername(struct sockaddr* addr, kj::uint* length) override { inner_->getpeername(addr, length); }
  void getsockname(struct sockaddr* addr, kj::uint* length) override { inner_->getsockname(addr, length); }

private:
  kj::Own<kj::AsyncIoStream> inner_;
};

// A Node that serves nothing: every call is refused as unimplemented. (What a hostile client
// serves; capnp 0.9.2 crashes when a peer asks for a null bootstrap capability.)
class EmptyNode final : public rpc::Node::Server {};

// Dials a node as `me` (a bare identity: no store) and runs RPC over the secure connection;
// `deaf` makes it never read what the node sends. `bootstrap` is what it serves the node.
inline kj::Promise<kj::Own<RpcPeer>> dialRpcAs(UvIoContext& io, const crypto::Identity& me, uint16_t targetPort,
                                               const PublicKey& targetKey, bool deaf,
                                               capnp::Capability::Client bootstrap = kj::heap<EmptyNode>()) {
  auto& port = io.getPort();
  return connect(port, "127.0.0.1", targetPort)
      .then([&port, &me, targetKey](kj::Own<UvStream> stream) {
        return secureInitiate(kj::mv(stream), me, targetKey, port.getTimer());
      })
      .then([deaf, served = kj::heap<capnp::Capability::Client>(kj::mv(bootstrap))](SecureConnection conn) mutable {
        if (deaf) conn.stream = kj::heap<DeafStream>(kj::mv(conn.stream));
        return kj::heap<RpcPeer>(kj::mv(conn), kj::mv(*served), true);
      });
}

// A fetch of up to BATCH_ENTRIES_MAX entries of `author` from seq 1: about BATCH_BYTES_MAX of answer
// when the journal holds that much. The request's message is sized to its content, so that a
// client that queues thousands of them stays small.
inline kj::Promise<void> fetchFromStart(rpc::Journal::Client& journal, const PublicKey& author) {
  auto req = journal.fetchRequest(capnp::MessageSize{16, 0});
  req.setAuthor(kj::arrayPtr(author.data(), author.size()));
  req.setFromSeq(1);
  req.setLimit(static_cast<uint32_t>(BATCH_ENTRIES_MAX));
  return req.send().ignoreResult();
}

// An EntrySink that never answers a push.
class SilentSink final : public rpc::EntrySink::Server {
public:
  kj::Promise<void> push(PushContext) override { return kj::NEVER_DONE; }
};

// ---------------------------------------------------------------------------------------------
// A cheap handshake: Noise XK as the initiator over a bare UvStream, then the responder's status
// frame, after which the connection keeps only its socket (no secure stream, no RPC) and reads
// nothing more. Costs the client a socket and little else; costs the server what a session or a
// pending redeemer costs it.

struct CheapConnection {
  // The socket only, as a duplicated descriptor: a UvStream would keep reading into a buffer of
  // its own (64 KiB once anything arrives, the node's close included), which is the test's memory,
  // not the node's.
  struct Socket {
    int fd = -1;
    explicit Socket(int f = -1) : fd(f) {}
    Socket(Socket&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    Socket& operator=(Socket&& o) noexcept {
      std::swap(fd, o.fd);
      return *this;
    }
    ~Socket() {
      if (fd >= 0) ::close(fd);
    }
  };
  Socket socket;
  bool accepted = false;
  std::string refusal;  // the responder's reason when it refused us
};

namespace internal {

struct CheapHandshake {
  kj::Own<UvStream> stream;
  crypto::noise::HandshakeState handshake;
  crypto::noise::FrameReader reader{256};  // handshake messages and the status frame are small
  Bytes chunk = Bytes(4096);
  Bytes sending;
  explicit CheapHandshake(crypto::noise::HandshakeState h) : handshake(std::move(h)) {}
};

inline kj::Promise<Bytes> readCheapFrame(std::shared_ptr<CheapHandshake> state) {
  if (auto frame = state->reader.tryNext()) return kj::mv(*frame);
  auto& stream = *state->stream;
  return stream.tryRead(state->chunk.data(), 1, state->chunk.size()).then([state](size_t n) -> kj::Promise<Bytes> {
    KJ_REQUIRE(n > 0, "the node closed the connection during the handshake");
    state->reader.feed({state->chunk.data(), n});
    return readCheapFrame(state);
  });
}

inline kj::Promise<void> writeCheapFrame(std::shared_ptr<CheapHandshake> state, const Bytes& message) {
  state->sending = crypto::noise::frame(message);
  return state->stream->write(state->sending.data(), state->sending.size()).attach(kj::mv(state));
}

}  // namespace internal

inline kj::Promise<CheapConnection> cheapHandshake(UvIoContext& io, const crypto::Identity& me, uint16_t targetPort,
                                                   const PublicKey& targetKey) {
  namespace noise = crypto::noise;
  auto remoteStatic = noise::ed25519PublicToX25519(targetKey);
  KJ_REQUIRE(remoteStatic.has_value());
  auto statics = noise::ed25519SecretToX25519(me.signingSecret());
  auto state = std::make_shared<internal::CheapHandshake>(
      noise::HandshakeState::initiator(asBytes(noise::KITH_TRANSPORT_PROLOGUE), statics, *remoteStatic));
  Bytes myKey(me.publicKey().begin(), me.publicKey().end());
  return connect(io.getPort(), "127.0.0.1", targetPort)
      .then([state](kj::Own<UvStream> stream) {
        state->stream = kj::mv(stream);
        return internal::writeCheapFrame(state, state->handshake.writeMessage({}));
      })
      .then([state]() { return internal::readCheapFrame(state); })
      .then([state, myKey](Bytes message2) {
        (void)state->handshake.readMessage(message2);
        return internal::writeCheapFrame(state, state->handshake.writeMessage(myKey));
      })
      .then([state]() { return internal::readCheapFrame(state); })
      .then([state](Bytes statusFrame) {
        auto ciphers = state->handshake.split();
        Bytes status = ciphers.receive.decryptWithAd({}, statusFrame);
        KJ_REQUIRE(!status.empty(), "the node sent an empty status");
        CheapConnection out;
        out.accepted = status[0] == 0;
        if (!out.accepted) out.refusal.assign(status.begin() + 1, status.end());
        out.socket = CheapConnection::Socket(::dup(KJ_ASSERT_NONNULL(state->stream->getFd())));
        state->stream = nullptr;
        return out;
      });
}

// ---------------------------------------------------------------------------------------------
// Raw TCP clients on plain non-blocking sockets: cost the test process a file descriptor each.

class RawClients {
public:
  RawClients() = default;
  ~RawClients() {
    for (int fd : fds_) ::close(fd);
  }
  RawClients(const RawClients&) = delete;
  RawClients& operator=(const RawClients&) = delete;

  // Starts a connection to 127.0.0.1:port; returns its index.
  size_t open(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    REQUIRE((rc == 0 || errno == EINPROGRESS));
    fds_.push_back(fd);
    return fds_.size() - 1;
  }

  // True when connection `i` is established (the kernel has it in the listener's queue, or the
  // node took it), false while it is still connecting or when it failed.
  bool connected(size_t i) const {
    pollfd p{fds_[i], POLLOUT, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & POLLOUT) == 0) return false;
    int error = 0;
    socklen_t length = sizeof error;
    return ::getsockopt(fds_[i], SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
  }

  // Sends `bytes` on connection `i` (small: never more than the socket buffer); true when sent.
  bool send(size_t i, const Bytes& bytes) {
    return ::send(fds_[i], bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }

  size_t size() const { return fds_.size(); }

private:
  std::vector<int> fds_;
};

// Connections waiting in the kernel's accept queue of the IPv4 listener on `port` (the rx_queue
// column of /proc/net/tcp for a socket in LISTEN): 0 once the node has accepted everything queued.
inline size_t acceptQueueLength(uint16_t port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    if (state != "0A") continue;  // TCP_LISTEN
    auto colon = local.find(':');
    if (colon == std::string::npos || std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
    auto split = queues.find(':');
    return std::stoul(queues.substr(split + 1), nullptr, 16);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// A spy: a Node capability that records every call a node makes on it. Journal calls go to
// `inner` (a real node's service, as the peer it stands for would answer) when there is one;
// without one, the spy answers as a node that holds the journals in `claimed` and takes every sink
// it is given.

struct CallLog {
  unsigned journalsCalls = 0;  // Node.journals()
  unsigned journalCalls = 0;   // Node.journal(id)
  unsigned headsCalls = 0;
  unsigned fetchCalls = 0;
  unsigned pushCalls = 0;
  uint64_t pushedEntries = 0;
  unsigned subscribeCalls = 0;
  VersionVector lastHave;  // the `have` of the last subscribe: what the caller holds, in the clear
  // Sinks handed to the spy, kept when there is no inner (shared: a copy of the log is a snapshot
  // of the counts).
  std::shared_ptr<std::vector<rpc::EntrySink::Client>> sinks = std::make_shared<std::vector<rpc::EntrySink::Client>>();
  unsigned journalTraffic() const { return journalCalls + headsCalls + fetchCalls + pushCalls + subscribeCalls; }
};

class NullSubscription final : public rpc::Subscription::Server {};

class SpyJournal final : public rpc::Journal::Server {
public:
  SpyJournal(kj::Maybe<rpc::Journal::Client> inner, std::shared_ptr<CallLog> log)
      : inner_(kj::mv(inner)), log_(kj::mv(log)) {}

  kj::Promise<void> push(PushContext context) override {
    ++log_->pushCalls;
    log_->pushedEntries += context.getParams().getEntries().size();
    KJ_IF_MAYBE(inner, inner_) {
      auto req = inner->pushRequest();
      req.setEntries(context.getParams().getEntries());
      return context.tailCall(kj::mv(req));
    }
    context.getResults().initHeads(0);
    return kj::READY_NOW;
  }
  kj::Promise<void> heads(HeadsContext context) override {
    ++log_->headsCalls;
    KJ_IF_MAYBE(inner, inner_) { return context.tailCall(inner->headsRequest()); }
    context.getResults().initHeads(0);
    return kj::READY_NOW;
  }
  kj::Promise<void> fetch(FetchContext context) override {
    ++log_->fetchCalls;
    KJ_IF_MAYBE(inner, inner_) {
      auto params = context.getParams();
      auto req = inner->fetchRequest();
      req.setAuthor(params.getAuthor());
      req.setFromSeq(params.getFromSeq());
      req.setLimit(params.getLimit());
      return context.tailCall(kj::mv(req));
    }
    context.getResults().initEntries(0);
    return kj::READY_NOW;
  }
  kj::Promise<void> subscribe(SubscribeContext context) override {
    ++log_->subscribeCalls;
    auto params = context.getParams();
    log_->lastHave = readHeads(params.getHave());
    KJ_IF_MAYBE(inner, inner_) {
      auto req = inner->subscribeRequest();
      req.setHave(params.getHave());
      req.setSink(params.getSink());
      return context.tailCall(kj::mv(req));
    }
    log_->sinks->push_back(params.getSink());
    context.getResults().setSubscription(kj::heap<NullSubscription>());
    return kj::READY_NOW;
  }

private:
  kj::Maybe<rpc::Journal::Client> inner_;
  std::shared_ptr<CallLog> log_;
};

class SpyNode final : public rpc::Node::Server {
public:
  // With `inner`, answers as that node; without, claims `claimed`.
  SpyNode(kj::Maybe<rpc::Node::Client> inner, std::vector<JournalId> claimed, std::shared_ptr<CallLog> log)
      : inner_(kj::mv(inner)), claimed_(std::move(claimed)), log_(kj::mv(log)) {}

  kj::Promise<void> journals(JournalsContext context) override {
    ++log_->journalsCalls;
    KJ_IF_MAYBE(inner, inner_) { return context.tailCall(inner->journalsRequest()); }
    auto ids = context.getResults().initIds(static_cast<unsigned>(claimed_.size()));
    for (unsigned i = 0; i < claimed_.size(); ++i) ids.set(i, kj::arrayPtr(claimed_[i].data(), claimed_[i].size()));
    return kj::READY_NOW;
  }
  kj::Promise<void> journal(JournalContext context) override {
    ++log_->journalCalls;
    KJ_IF_MAYBE(inner, inner_) {
      auto req = inner->journalRequest();
      req.setId(context.getParams().getId());
      context.getResults().setJournal(kj::heap<SpyJournal>(req.send().getJournal(), log_));
    } else {
      context.getResults().setJournal(kj::heap<SpyJournal>(nullptr, log_));
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> redeemInvite(RedeemInviteContext) override { KJ_FAIL_REQUIRE("a spy redeems nothing"); }

private:
  kj::Maybe<rpc::Node::Client> inner_;
  std::vector<JournalId> claimed_;
  std::shared_ptr<CallLog> log_;
};

// Listens on 127.0.0.1:`port` (0: any) as `me`, accepts every peer, and serves each the
// capability `serve(peer)` makes. Keeps the connections until destroyed.
class SpyListener final : private kj::TaskSet::ErrorHandler {
public:
  using Serve = std::function<capnp::Capability::Client(const PublicKey& peer)>;
  SpyListener(UvIoContext& io, const crypto::Identity& me, uint16_t port, Serve serve)
      : io_(io), me_(me), serve_(std::move(serve)), listener_(io.getPort(), "127.0.0.1", port), tasks_(*this) {
    tasks_.add(acceptLoop());
  }
  uint16_t port() const { return listener_.getPort(); }
  size_t connections() const { return peers_.size(); }
  // Tells every connected node that the journals shared with it changed (it asks `journals` again).
  kj::Promise<void> journalsChanged() {
    auto all = kj::heapArrayBuilder<kj::Promise<void>>(peers_.size());
    for (auto& p : peers_) all.add(p->remote.journalsChangedRequest().send().ignoreResult());
    return kj::joinPromises(all.finish());
  }

private:
  void taskFailed(kj::Exception&&) override {}  // a peer that failed its handshake is dropped

  kj::Promise<void> acceptLoop() {
    return listener_.accept().then([this](kj::Own<UvStream> stream) {
      tasks_.add(secureRespond(
                     kj::mv(stream), me_, [](const PublicKey&) { return std::string(); }, io_.getPort().getTimer())
                     .then([this](SecureConnection conn) {
                       auto bootstrap = serve_(conn.remote);
                       peers_.push_back(kj::heap<RpcPeer>(kj::mv(conn), kj::mv(bootstrap), false));
                     }));
      return acceptLoop();
    });
  }

  UvIoContext& io_;
  const crypto::Identity& me_;
  Serve serve_;
  UvListener listener_;
  std::vector<kj::Own<RpcPeer>> peers_;
  kj::TaskSet tasks_;
};

}  // namespace kith::node::test
