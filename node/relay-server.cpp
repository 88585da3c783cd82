#include "node/relay-server.h"

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <kj/debug.h>

#include <algorithm>
#include <cstring>

#include "node/replicator.h"
#include "node/send-queue.h"

namespace kith::node {
namespace {

using protocol::RelayAction;
using store::RelayRefusal;
using store::RelayRefusalKind;

// One answer for an unknown id and a bad proof, so that a stranger learns nothing of which ids
// exist.
constexpr const char* NO_MAILBOX_OR_WRONG_CREDENTIAL = "no such mailbox or wrong credential";

// "203.0.113.5:4242" -> "203.0.113.5"; "[::1]:4242" -> "::1".
std::string addressOf(const std::string& peerName) {
  if (!peerName.empty() && peerName[0] == '[') {
    auto close = peerName.find(']');
    if (close != std::string::npos) return peerName.substr(1, close - 1);
  }
  auto colon = peerName.rfind(':');
  return colon == std::string::npos ? peerName : peerName.substr(0, colon);
}

ByteView bytesOf(capnp::Data::Reader d) { return ByteView(d.begin(), d.size()); }

std::optional<Key32> key32Of(capnp::Data::Reader d) {
  if (d.size() != 32) return std::nullopt;
  Key32 k;
  std::memcpy(k.data(), d.begin(), 32);
  return k;
}

}  // namespace

const char* callRefusalName(RelayCallRefusal refusal) {
  switch (refusal) {
    case RelayCallRefusal::BAD_REQUEST:
      return "bad_request";
    case RelayCallRefusal::MAILBOXES_OPEN:
      return "mailboxes_open";
    case RelayCallRefusal::WAITING:
      return "waiting";
    case RelayCallRefusal::CONNECTION_LIMIT:
      return "connection_limit";
    case RelayCallRefusal::STORE_FAILED:
      return "store_failed";
    case RelayCallRefusal::COUNT:
      break;
  }
  KITH_ASSERT(false);
  return "";
}

// What the services of one connection share; they may outlive the Connection by a moment (Cap'n
// Proto releases capabilities after the connection is gone), so it is shared.
struct RelayServer::Peer {
  std::string label;  // "203.0.113.5:4242"
  crypto::PublicKey remote{};
  size_t mailboxesOpen = 0;
  uint64_t refusals = 0;
};

struct RelayServer::Connection {
  Connection(SecureConnection secure, capnp::Capability::Client bootstrap, std::shared_ptr<Peer> peerState,
             std::string address)
      : connection(kj::mv(secure)), peer(kj::mv(peerState)), address(kj::mv(address)),
        meter(std::make_shared<SendQueueMeter>()),
        metered(kj::heap<MeteredStream>(*connection.stream, meter, RELAY_SEND_QUEUE_PAUSE_READ_BYTES)),
        network(*metered, capnp::rpc::twoparty::Side::SERVER, connectionReaderOptions(RELAY_RPC_MESSAGE_WORDS_MAX)),
        rpc(capnp::makeRpcServer(network, kj::mv(bootstrap))) {
    meter->network = &network;
    rpc.setFlowLimit(RELAY_RPC_FLOW_LIMIT_WORDS);
  }
  ~Connection() noexcept(false) { meter->network = nullptr; }

  SecureConnection connection;
  std::shared_ptr<Peer> peer;
  std::string address;
  std::shared_ptr<SendQueueMeter> meter;
  kj::Own<kj::AsyncIoStream> metered;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

// A mailbox opened on one connection: put and get.
class RelayServer::MailboxService final : public relayrpc::Mailbox::Server {
public:
  MailboxService(RelayServer& server, std::shared_ptr<Peer> peer, const Key32& id)
      : server_(server), peer_(kj::mv(peer)), id_(id) {
    peer_->mailboxesOpen++;
  }
  ~MailboxService() noexcept(false) { peer_->mailboxesOpen--; }

  kj::Promise<void> put(PutContext context) override {
    auto envelopes = context.getParams().getEnvelopes();
    if (envelopes.size() > RELAY_ENVELOPES_PER_PUT_MAX) {
      server_.refuse(*peer_, "put", &id_, RelayCallRefusal::BAD_REQUEST,
                     "too many envelopes in one put: " + std::to_string(envelopes.size()) + " (the most is " +
                         std::to_string(RELAY_ENVELOPES_PER_PUT_MAX) + ")");
    }
    std::vector<ByteView> views;
    views.reserve(envelopes.size());
    size_t total = 0;
    for (auto e : envelopes) {
      if (!isEnvelopeSize(e.size())) {
        server_.refuse(*peer_, "put", &id_, RelayCallRefusal::BAD_REQUEST,
                       "an envelope of " + std::to_string(e.size()) + " bytes, which is no envelope size");
      }
      total += e.size();
      views.push_back(bytesOf(e));
    }
    if (total > RELAY_PUT_ACCEPT_BYTES_MAX) {
      server_.refuse(*peer_, "put", &id_, RelayCallRefusal::BAD_REQUEST,
                     "a put of " + std::to_string(total) + " bytes (the most is " +
                         std::to_string(RELAY_PUT_ACCEPT_BYTES_MAX) + ")");
    }
    store::PutOutcome out;
    try {
      out = server_.store_.put(id_, views);
    } catch (const Error& e) {
      server_.log_.error("relay: the store failed at a put: {}", e.what());
      server_.refuse(*peer_, "put", &id_, RelayCallRefusal::STORE_FAILED, "the relay's store failed; try again later");
    }
    if (out.refusal) {
      if (out.refusal->kind == RelayRefusalKind::NO_MAILBOX) out.refusal->message = NO_MAILBOX_OR_WRONG_CREDENTIAL;
      server_.refuse(*peer_, "put", &id_, *out.refusal);
    }
    auto results = context.getResults();
    results.setCursor(out.cursor);
    results.setStored(out.stored);
    if (out.stored > 0) {
      server_.stats_.envelopesStored += out.stored;
      server_.wake(id_);
      server_.changed();
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> get(GetContext context) override {
    auto params = context.getParams();
    uint64_t after = params.getAfter();
    store::GetOutcome now = read(after);
    if (!now.found) {
      server_.refuse(*peer_, "get", &id_,
                     store::RelayRefusal{RelayRefusalKind::NO_MAILBOX, NO_MAILBOX_OR_WRONG_CREDENTIAL});
    }
    if (!params.getWait() || now.closed || !now.envelopes.empty()) {
      answer(context, now);
      return kj::READY_NOW;
    }
    if (waiting_) {
      server_.refuse(*peer_, "get", &id_, RelayCallRefusal::WAITING,
                     "a waiting get on this mailbox is under way already (one at a time)");
    }
    // Nothing yet: wait for a put, a close or a removal, or answer empty after RELAY_GET_WAIT_MS.
    waiting_ = true;
    auto done = kj::defer([this]() { waiting_ = false; });
    return server_.waitFor(id_)
        .exclusiveJoin(server_.port_.getTimer().afterDelay(RELAY_GET_WAIT_MS * kj::MILLISECONDS))
        .then([this, context, after]() mutable {
          // A mailbox removed while the get waited answers empty and closed.
          answer(context, read(after));
        })
        .attach(kj::mv(done));
  }

private:
  store::GetOutcome read(uint64_t after) {
    try {
      return server_.store_.get(id_, after, RELAY_GET_ENVELOPES_MAX, RELAY_GET_BYTES_MAX);
    } catch (const Error& e) {
      server_.log_.error("relay: the store failed at a get: {}", e.what());
      server_.refuse(*peer_, "get", &id_, RelayCallRefusal::STORE_FAILED, "the relay's store failed; try again later");
    }
  }

  void answer(GetContext& context, const store::GetOutcome& out) {
    auto results = context.getResults();
    auto list = results.initEnvelopes(static_cast<unsigned>(out.envelopes.size()));
    for (size_t i = 0; i < out.envelopes.size(); ++i) {
      list[i].setCursor(out.envelopes[i].cursor);
      const Bytes& data = out.envelopes[i].data;
      list[i].setData(capnp::Data::Reader(data.data(), data.size()));
    }
    results.setCursor(out.cursor);
    results.setClosed(out.closed || !out.found);
    server_.stats_.envelopesServed += out.envelopes.size();
  }

  RelayServer& server_;
  std::shared_ptr<Peer> peer_;
  Key32 id_;
  bool waiting_ = false;
};

// The bootstrap capability of one connection.
class RelayServer::RelayService final : public relayrpc::Relay::Server {
public:
  RelayService(RelayServer& server, std::shared_ptr<Peer> peer) : server_(server), peer_(kj::mv(peer)) {}

  kj::Promise<void> create(CreateContext context) override {
    auto params = context.getParams();
    auto id = key32Of(params.getId());
    auto credential = key32Of(params.getCredential());
    auto admin = key32Of(params.getAdmin());
    if (!id || !credential || !admin) {
      server_.refuse(*peer_, "create", nullptr, RelayCallRefusal::BAD_REQUEST,
                     "an id, a credential and an admin key are 32 bytes each");
    }
    auto token = params.getToken();
    if (token.size() != 0 && token.size() != store::RELAY_TOKEN_BYTES) {
      server_.refuse(*peer_, "create", &*id, RelayCallRefusal::BAD_REQUEST,
                     "an access token is " + std::to_string(store::RELAY_TOKEN_BYTES) + " bytes");
    }
    std::optional<RelayRefusal> refused;
    try {
      refused = server_.store_.create(*id, *credential, *admin, bytesOf(token));
    } catch (const Error& e) { storeFailed("create", &*id, e); }
    if (refused) server_.refuse(*peer_, "create", &*id, *refused);
    server_.changed();
    return kj::READY_NOW;
  }

  kj::Promise<void> open(OpenContext context) override {
    auto params = context.getParams();
    auto id = key32Of(params.getId());
    if (!id) server_.refuse(*peer_, "open", nullptr, RelayCallRefusal::BAD_REQUEST, "a mailbox id is 32 bytes");
    auto m = mailbox("open", *id);
    if (!m || !proofOk(m->credential, RelayAction::OPEN, *id, params.getProof())) {
      server_.refuse(*peer_, "open", &*id, RelayRefusal{RelayRefusalKind::NO_MAILBOX, NO_MAILBOX_OR_WRONG_CREDENTIAL});
    }
    if (peer_->mailboxesOpen >= RELAY_MAILBOXES_OPEN_PER_CONNECTION_MAX) {
      server_.refuse(*peer_, "open", &*id, RelayCallRefusal::MAILBOXES_OPEN,
                     "too many mailboxes open on this connection (the most is " +
                         std::to_string(RELAY_MAILBOXES_OPEN_PER_CONNECTION_MAX) + ")");
    }
    context.getResults().setMailbox(kj::heap<MailboxService>(server_, peer_, *id));
    return kj::READY_NOW;
  }

  kj::Promise<void> rotate(RotateContext context) override {
    auto params = context.getParams();
    auto id = key32Of(params.getId());
    auto newId = key32Of(params.getNewId());
    auto newCredential = key32Of(params.getNewCredential());
    if (!id || !newId || !newCredential) {
      server_.refuse(*peer_, "rotate", nullptr, RelayCallRefusal::BAD_REQUEST,
                     "an id, a new id and a new credential are 32 bytes each");
    }
    Bytes subject(id->begin(), id->end());
    subject.insert(subject.end(), newId->begin(), newId->end());
    subject.insert(subject.end(), newCredential->begin(), newCredential->end());
    auto m = mailbox("rotate", *id);
    if (!m || !proofOk(m->admin, RelayAction::ROTATE, subject, params.getProof())) {
      server_.refuse(*peer_, "rotate", &*id,
                     RelayRefusal{RelayRefusalKind::NO_MAILBOX, NO_MAILBOX_OR_WRONG_CREDENTIAL});
    }
    std::optional<RelayRefusal> refused;
    try {
      refused = server_.store_.rotate(*id, *newId, *newCredential);
    } catch (const Error& e) { storeFailed("rotate", &*id, e); }
    if (refused) server_.refuse(*peer_, "rotate", &*id, *refused);
    server_.wake(*id);
    server_.changed();
    return kj::READY_NOW;
  }

  kj::Promise<void> remove(RemoveContext context) override {
    auto params = context.getParams();
    auto id = key32Of(params.getId());
    if (!id) server_.refuse(*peer_, "remove", nullptr, RelayCallRefusal::BAD_REQUEST, "a mailbox id is 32 bytes");
    auto m = mailbox("remove", *id);
    if (!m || !proofOk(m->admin, RelayAction::REMOVE, *id, params.getProof())) {
      server_.refuse(*peer_, "remove", &*id,
                     RelayRefusal{RelayRefusalKind::NO_MAILBOX, NO_MAILBOX_OR_WRONG_CREDENTIAL});
    }
    try {
      server_.store_.remove(*id);
    } catch (const Error& e) { storeFailed("remove", &*id, e); }
    server_.wake(*id);
    server_.changed();
    return kj::READY_NOW;
  }

  kj::Promise<void> status(StatusContext context) override {
    auto results = context.getResults();
    results.setAdmission(store::admissionName(server_.store_.policy().admission));
    results.setVersion(protocol::RELAY_PROTOCOL_VERSION);
    return kj::READY_NOW;
  }

private:
  bool proofOk(const Key32& key, RelayAction action, ByteView subject, capnp::Data::Reader proof) const {
    if (proof.size() != crypto::SIGNATURE_BYTES) return false;
    Bytes message = protocol::relayProofMessage(action, server_.identity_.publicKey(), peer_->remote, subject);
    return crypto::verify(key, message, bytesOf(proof));
  }

  std::optional<store::MailboxRecord> mailbox(const char* call, const Key32& id) {
    try {
      return server_.store_.mailbox(id);
    } catch (const Error& e) { storeFailed(call, &id, e); }
  }

  [[noreturn]] void storeFailed(const char* call, const Key32* id, const Error& e) {
    server_.log_.error("relay: the store failed at {}: {}", call, e.what());
    server_.refuse(*peer_, call, id, RelayCallRefusal::STORE_FAILED, "the relay's store failed; try again later");
  }

  RelayServer& server_;
  std::shared_ptr<Peer> peer_;
};

RelayServer::RelayServer(UvEventPort& port, store::RelayStore& store, const crypto::Identity& identity,
                         RelayServerSettings settings, spdlog::logger& log)
    : port_(port), store_(store), identity_(identity), settings_(std::move(settings)), log_(log), tasks_(*this) {}

RelayServer::~RelayServer() noexcept(false) {
  // Waiting gets first (their promises belong to connections), then the connections.
  waiters_.clear();
  connections_.clear();
}

void RelayServer::taskFailed(kj::Exception&& exception) { log_.error("relay: {}", exception.getDescription().cStr()); }

void RelayServer::changed() {
  if (changed_) changed_();
}

uint16_t RelayServer::listenPort() const {
  KJ_IF_MAYBE(l, listener_) { return (*l)->getPort(); }
  return 0;
}

RelayServerStats RelayServer::stats() const {
  RelayServerStats s = stats_;
  s.connections = connections_.size();
  s.handshakes = handshakes_.size();
  return s;
}

void RelayServer::start() {
  listener_ = kj::heap<UvListener>(port_, settings_.host.c_str(), settings_.port);
  tasks_.add(acceptLoop(0));
  tasks_.add(sweepLoop());
}

kj::Promise<void> RelayServer::sweepLoop() {
  try {
    store::SweepOutcome out = store_.sweep();
    if (out.envelopesDropped > 0 || out.mailboxesDeleted > 0) {
      log_.info("relay: retention dropped {} envelope(s) ({} bytes) and {} closed mailbox(es)", out.envelopesDropped,
                out.bytesDropped, out.mailboxesDeleted);
      changed();
    }
  } catch (const Error& e) { log_.error("relay: the retention sweep failed: {}; it runs again later", e.what()); }
  return port_.getTimer().afterDelay(RELAY_SWEEP_INTERVAL_MS * kj::MILLISECONDS).then([this]() { return sweepLoop(); });
}

kj::Promise<void> RelayServer::acceptLoop(unsigned failures) {
  KJ_IF_MAYBE(l, listener_) {
    return (*l)->accept().then(
        [this](kj::Own<UvStream> stream) {
          respond(kj::mv(stream));
          return acceptLoop(0);
        },
        [this, failures](kj::Exception&& e) {
          logLoopFailure(log_, "accepting a connection", failures + 1, e);
          return port_.getTimer().afterDelay(loopRetryDelay(failures + 1)).then([this, failures]() {
            return acceptLoop(failures + 1);
          });
        });
  }
  return kj::READY_NOW;
}

std::string RelayServer::admitReason(const std::string& address) const {
  if (connections_.size() + admitted_ >= settings_.connectionsMax) {
    return "the relay has too many connections (" + std::to_string(settings_.connectionsMax) + "); try again later";
  }
  auto it = perAddress_.find(address);
  if (it != perAddress_.end() && it->second >= settings_.connectionsPerAddress) {
    return "too many connections from your address (the most is " + std::to_string(settings_.connectionsPerAddress) +
           ")";
  }
  return "";
}

void RelayServer::release(const std::string& address) {
  auto it = perAddress_.find(address);
  if (it == perAddress_.end()) return;
  if (--it->second == 0) perAddress_.erase(it);
}

void RelayServer::respond(kj::Own<UvStream> stream) {
  std::string label = stream->getPeerName().cStr();
  std::string address = addressOf(label);
  if (handshakes_.size() >= HANDSHAKES_IN_FLIGHT_MAX) {
    // An honest client finishes in one round trip: the oldest unfinished handshake is the stalled one.
    auto oldest = handshakes_.begin();
    auto canceler = kj::mv(oldest->second);
    handshakes_.erase(oldest);
    canceler->cancel("dropped: too many handshakes at once");
    if (handshakesDropped_++ % HANDSHAKES_DROPPED_LOG_EVERY == 0) {
      log_.warn("relay: too many handshakes at once ({}): dropped the oldest unfinished one ({} so far)",
                HANDSHAKES_IN_FLIGHT_MAX, handshakesDropped_);
    }
  }
  uint64_t serial = ++serial_;
  // Set when the handshake took a connection slot of `address`; the connection takes it over.
  auto admitted = std::make_shared<bool>(false);
  auto canceler = kj::heap<kj::Canceler>();
  auto handshake = canceler->wrap(secureRespond(
      kj::mv(stream), identity_,
      [this, address, label, admitted](const crypto::PublicKey&) {
        std::string why = admitReason(address);
        if (why.empty()) {
          perAddress_[address]++;
          admitted_++;
          *admitted = true;
        } else {
          stats_.callRefusals[static_cast<size_t>(RelayCallRefusal::CONNECTION_LIMIT)]++;
          log_.warn("[{}] relay: connection refused: {}", label, why);
          changed();
        }
        return why;
      },
      port_.getTimer()));
  handshakes_.emplace(serial, kj::mv(canceler));
  tasks_.add(handshake.then(
      [this, serial, address, label, admitted](SecureConnection conn) {
        handshakes_.erase(serial);
        KITH_ASSERT(*admitted);
        *admitted = false;
        admitted_--;
        adopt(kj::mv(conn), address, label);
      },
      [this, serial, address, label, admitted](kj::Exception&& e) {
        if (*admitted) {
          *admitted = false;
          admitted_--;
          release(address);
        }
        if (handshakes_.erase(serial) == 0) return;  // dropped: counted when it was
        log_.debug("[{}] relay: handshake failed: {}", label, e.getDescription().cStr());
      }));
}

void RelayServer::adopt(SecureConnection connection, const std::string& address, const std::string& label) {
  auto peer = std::make_shared<Peer>();
  peer->label = label;
  peer->remote = connection.remote;
  uint64_t serial = ++serial_;
  auto conn = kj::heap<Connection>(kj::mv(connection), relayrpc::Relay::Client(kj::heap<RelayService>(*this, peer)),
                                   peer, address);
  auto ended = conn->network.onDisconnect();
  connections_.emplace(serial, kj::mv(conn));
  stats_.connectionsAccepted++;
  log_.debug("[{}] relay: connected", label);
  changed();
  tasks_.add(ended.then([this, serial]() {
    // Drop the connection later, not from inside its own network's promise.
    tasks_.add(kj::evalLater([this, serial]() {
      auto it = connections_.find(serial);
      if (it == connections_.end()) return;
      std::string address = it->second->address;
      log_.debug("[{}] relay: disconnected{}", it->second->peer->label,
                 it->second->connection.failure->empty() ? "" : ": " + *it->second->connection.failure);
      connections_.erase(it);
      release(address);
      changed();
    }));
  }));
}

void RelayServer::wake(const Key32& id) {
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return;
  auto waiters = kj::mv(it->second);
  waiters_.erase(it);
  for (auto& f : waiters) f->fulfill();
}

kj::Promise<void> RelayServer::waitFor(const Key32& id) {
  auto& list = waiters_[id];
  // Gets that timed out or were cancelled left their fulfillers: drop them now.
  list.erase(
      std::remove_if(list.begin(), list.end(), [](kj::Own<kj::PromiseFulfiller<void>>& f) { return !f->isWaiting(); }),
      list.end());
  auto paf = kj::newPromiseAndFulfiller<void>();
  list.push_back(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

void RelayServer::logRefusal(Peer& peer, const char* call, const Key32* id, const std::string& message) {
  uint64_t n = ++peer.refusals;
  if (n > RELAY_REFUSALS_LOGGED_PER_CONNECTION && n % RELAY_REFUSALS_LOG_EVERY != 0) return;
  std::string mailbox = id != nullptr ? " mailbox " + shortId(*id) : std::string();
  std::string more = n > RELAY_REFUSALS_LOGGED_PER_CONNECTION
                         ? " (" + std::to_string(n) + " refusals on this connection so far)"
                         : std::string();
  log_.warn("[{}] relay: refused {}{}: {}{}", peer.label, call, mailbox, message, more);
}

void RelayServer::refuse(Peer& peer, const char* call, const Key32* id, store::RelayRefusal refusal) {
  stats_.refusals[static_cast<size_t>(refusal.kind)]++;
  logRefusal(peer, call, id, refusal.message);
  changed();
  kj::throwFatalException(nodeException(kj::Exception::Type::FAILED, refusal.message));
}

void RelayServer::refuse(Peer& peer, const char* call, const Key32* id, RelayCallRefusal kind,
                         const std::string& message) {
  stats_.callRefusals[static_cast<size_t>(kind)]++;
  logRefusal(peer, call, id, message);
  changed();
  kj::throwFatalException(nodeException(kj::Exception::Type::FAILED, message));
}

}  // namespace kith::node
