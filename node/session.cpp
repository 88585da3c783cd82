#include "node/session.h"

#include <capnp/message.h>
#include <kj/debug.h>

#include <cstring>

#include "protocol/roles.h"

namespace kith::node {
namespace {

capnp::ReaderOptions rpcReaderOptions() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = RPC_MESSAGE_WORDS_MAX;
  options.nestingLimit = RPC_NESTING_MAX;
  return options;
}

rpc::Node::Client bootstrapOf(capnp::RpcSystem<capnp::rpc::twoparty::VatId>& rpc, bool initiator) {
  capnp::MallocMessageBuilder message;
  auto vatId = message.initRoot<capnp::rpc::twoparty::VatId>();
  vatId.setSide(initiator ? capnp::rpc::twoparty::Side::SERVER : capnp::rpc::twoparty::Side::CLIENT);
  return rpc.bootstrap(vatId).castAs<rpc::Node>();
}

Key32 key32(capnp::Data::Reader d) {
  KJ_REQUIRE(d.size() == 32, "the peer sent an id that is not 32 bytes");
  Key32 k;
  std::memcpy(k.data(), d.begin(), 32);
  return k;
}

// The sink this node gives a peer when subscribing: the peer pushes entries into it. Each push is
// judged anew (Replicator::ingest refuses a peer that is no longer a member).
class Sink final : public rpc::EntrySink::Server {
public:
  Sink(Replicator& replicator, const JournalId& journal, const crypto::PublicKey& peer)
      : replicator_(replicator), journal_(journal), peer_(peer) {}

  kj::Promise<void> push(PushContext context) override {
    VersionVector heads = replicator_.ingest(journal_, context.getParams().getEntries(), peer_);
    fillHeads(context.getResults().initHeads(static_cast<unsigned>(heads.size())), heads);
    return kj::READY_NOW;
  }

private:
  Replicator& replicator_;
  JournalId journal_;
  crypto::PublicKey peer_;
};

// The stream under the RPC system, metered: reading waits while too much waits to be sent.
class MeteredStream;

}  // namespace

// The connection's budget: Cap'n Proto's own count of the bytes queued to the peer, and a wake-up
// after every write the socket finished (the only moment that count goes down).
class SessionBudget final : public ConnectionBudget {
public:
  size_t sendQueueBytes() override { return network_ != nullptr && !failed_ ? network_->getCurrentQueueSize() : 0; }

  kj::Promise<void> whenSendQueueBelow(size_t bytes) override {
    if (sendQueueBytes() < bytes) return kj::READY_NOW;
    // Something waits, so a write is under way: look again when it has finished. Cap'n Proto takes
    // the finished message off its count in an event of its own after the write, so look only once
    // the event loop has nothing else to do (evalLast), or a wake-up could be lost.
    auto paf = kj::newPromiseAndFulfiller<void>();
    waiters_.push_back(kj::mv(paf.fulfiller));
    return paf.promise.then([]() { return kj::evalLast([]() {}); }).then([this, bytes]() {
      return whenSendQueueBelow(bytes);
    });
  }

  // A write finished (or failed: then nothing will ever be sent, so nothing is counted any more).
  void written(bool ok) {
    if (!ok) failed_ = true;
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& f : waiters) f->fulfill();
  }

  capnp::TwoPartyVatNetwork* network_ = nullptr;

private:
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> waiters_;
  bool failed_ = false;
};

namespace {

class MeteredStream final : public kj::AsyncIoStream {
public:
  MeteredStream(kj::AsyncIoStream& inner, std::shared_ptr<SessionBudget> budget)
      : inner_(inner), budget_(kj::mv(budget)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    // The peer's next call could add to what we hold for it: read it only once the socket has
    // taken most of what waits.
    return budget_->whenSendQueueBelow(SEND_QUEUE_PAUSE_READ_BYTES).then([this, buffer, minBytes, maxBytes]() {
      return inner_.tryRead(buffer, minBytes, maxBytes);
    });
  }
  kj::Promise<void> write(const void* buffer, size_t size) override { return metered(inner_.write(buffer, size)); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return metered(inner_.write(pieces));
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_.whenWriteDisconnected(); }
  void shutdownWrite() override { inner_.shutdownWrite(); }
  void abortRead() override { inner_.abortRead(); }

private:
  kj::Promise<void> metered(kj::Promise<void> write) {
    auto budget = budget_;
    return write.then([budget]() { budget->written(true); },
                      [budget](kj::Exception&& e) {
                        budget->written(false);
                        kj::throwFatalException(kj::mv(e));
                      });
  }

  kj::AsyncIoStream& inner_;
  std::shared_ptr<SessionBudget> budget_;
};

rpc::Node::Client serviceFor(Replicator& replicator, const crypto::PublicKey& peer, PeerSession::Mode mode,
                             std::shared_ptr<SessionBudget> budget, std::function<void()> redeemed) {
  if (mode == PeerSession::Mode::REDEEMER) return replicator.redeemerFor(peer, std::move(redeemed));
  return replicator.nodeFor(peer, kj::mv(budget));
}

}  // namespace

PeerSession::PeerSession(Replicator& replicator, SecureConnection connection, bool initiator, kj::Timer& timer,
                         Mode mode)
    : replicator_(replicator), connection_(kj::mv(connection)), peer_(connection_.remote), initiator_(initiator),
      timer_(timer), mode_(mode), budget_(std::make_shared<SessionBudget>()),
      metered_(kj::heap<MeteredStream>(*connection_.stream, budget_)), redeemedPromise_(nullptr),
      network_(*metered_, initiator ? capnp::rpc::twoparty::Side::CLIENT : capnp::rpc::twoparty::Side::SERVER,
               rpcReaderOptions()),
      rpc_(capnp::makeRpcServer(network_, serviceFor(replicator, peer_, mode, budget_,
                                                     [this]() {
                                                       if (redeemed_->isWaiting()) redeemed_->fulfill();
                                                     }))),
      // A redeemer is asked nothing: not even for its bootstrap.
      remote_(mode == Mode::REDEEMER ? rpc::Node::Client(nullptr) : bootstrapOf(rpc_, initiator)), tasks_(*this) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  redeemed_ = kj::mv(paf.fulfiller);
  redeemedPromise_ = paf.promise.fork();
  budget_->network_ = &network_;
  rpc_.setFlowLimit(RPC_FLOW_LIMIT_WORDS);
  replicator_.addListener(this);
}

PeerSession::~PeerSession() noexcept(false) {
  replicator_.removeListener(this);
  budget_->network_ = nullptr;
}

size_t PeerSession::sendQueueBytes() const { return budget_->sendQueueBytes(); }

void PeerSession::storeChanged() {
  // A removal (or anything that ends the peer's membership) ends our subscriptions at once: the
  // peer's pushes would be refused anyway, and it should not keep our version vector up to date.
  for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
    bool allowed = false;
    try {
      allowed = replicator_.mayReplicate(it->first, peer_);
    } catch (...) {
      allowed = true;  // the store did not answer: keep it; every push is checked anyway
    }
    if (!allowed) {
      replicator_.log().warn("[peer {}] journal {}: stopped replicating: the peer is no longer a member",
                             shortId(peer_), shortId(it->first));
      it = subscriptions_.erase(it);
    } else {
      ++it;
    }
  }
}

void PeerSession::taskFailed(kj::Exception&& exception) {
  // A failed subscription or scan is logged; the connection itself ends through onDisconnect().
  replicator_.log().info("[peer {}] {}", shortId(peer_), exception.getDescription().cStr());
}

kj::Promise<void> PeerSession::scanJournals() {
  return remote_.journalsRequest().send().then([this](capnp::Response<rpc::Node::JournalsResults>&& response) {
    auto ids = response.getIds();
    KJ_REQUIRE(ids.size() <= JOURNALS_LISTED_MAX, "the peer listed too many journals");
    for (auto id : ids) {
      JournalId journal = key32(id);
      if (subscriptions_.count(journal) == 0 && replicator_.mayReplicate(journal, peer_)) subscribe(journal);
    }
  });
}

void PeerSession::subscribe(const JournalId& journal) {
  auto req = remote_.journalRequest();
  req.setId(kj::arrayPtr(journal.data(), journal.size()));
  auto journalCap = req.send().getJournal();
  auto sub = journalCap.subscribeRequest();
  VersionVector have = replicator_.store().versionVector(journal);
  fillHeads(sub.initHave(static_cast<unsigned>(have.size())), have);
  sub.setSink(kj::heap<Sink>(replicator_, journal, peer_));
  auto subscription = sub.send().getSubscription();
  subscriptions_.emplace(journal, subscription);
  replicator_.log().info("[peer {}] journal {}: replicating (we hold {} authors' chains)", shortId(peer_),
                         shortId(journal), have.size());
  // Learn of a refusal (a removed member) from the subscription's answer.
  tasks_.add(kj::mv(subscription).whenResolved().catch_([this, journal](kj::Exception&& e) {
    subscriptions_.erase(journal);
    replicator_.log().warn("[peer {}] journal {}: the peer refused to replicate: {}", shortId(peer_), shortId(journal),
                           e.getDescription().cStr());
  }));
}

kj::Promise<void> PeerSession::rescanLoop(unsigned failures) {
  // A failed scan (our store, or a call the peer refused) is logged and tried again later; a
  // dead connection ends the session through onDisconnect() instead.
  return scanJournals().then(
      [this]() {
        return timer_.afterDelay(JOURNALS_RESCAN_MS * kj::MILLISECONDS).then([this]() { return rescanLoop(0); });
      },
      [this, failures](kj::Exception&& e) {
        logLoopFailure(replicator_.log(), ("[peer " + shortId(peer_) + "] asking which journals we share").c_str(),
                       failures + 1, e);
        return timer_.afterDelay(std::max(loopRetryDelay(failures + 1), JOURNALS_RESCAN_MS * kj::MILLISECONDS))
            .then([this, failures]() { return rescanLoop(failures + 1); });
      });
}

kj::Promise<void> PeerSession::run() {
  if (mode_ == Mode::REDEEMER) {
    auto lifetime = timer_.afterDelay(REDEEMER_LIFETIME_MS * kj::MILLISECONDS).then([]() -> kj::Promise<void> {
      return nodeException(kj::Exception::Type::DISCONNECTED, "invite redeemer: time is up");
    });
    auto done = redeemedPromise_.addBranch()
                    .then([this]() { return timer_.afterDelay(REDEEMER_LINGER_MS * kj::MILLISECONDS); })
                    .then([]() -> kj::Promise<void> {
                      return nodeException(kj::Exception::Type::DISCONNECTED, "invite redeemer: done");
                    });
    return network_.onDisconnect()
        .then([]() -> kj::Promise<void> {
          return nodeException(kj::Exception::Type::DISCONNECTED, "the peer closed the connection");
        })
        .exclusiveJoin(kj::mv(done))
        .exclusiveJoin(kj::mv(lifetime));
  }
  auto scanning = rescanLoop(0).then([]() -> kj::Promise<void> { return kj::NEVER_DONE; });
  return network_.onDisconnect().exclusiveJoin(kj::mv(scanning)).then([this]() -> kj::Promise<void> {
    // The RPC system swallows the stream's error; the secure stream kept it for the log.
    if (!connection_.failure->empty()) return nodeException(kj::Exception::Type::DISCONNECTED, *connection_.failure);
    return nodeException(kj::Exception::Type::DISCONNECTED, "the peer closed the connection");
  });
}

kj::Promise<std::pair<JournalId, protocol::Role>> PeerSession::redeem(const Bytes& secret) {
  auto req = remote_.redeemInviteRequest();
  req.setSecret(kj::arrayPtr(secret.data(), secret.size()));
  return req.send().then([](capnp::Response<rpc::Node::RedeemInviteResults>&& response) {
    JournalId journal = key32(response.getJournal());
    auto role = static_cast<protocol::Role>(response.getRole());
    KJ_REQUIRE(protocol::isInvitable(role), "the peer granted an unknown role");
    return std::make_pair(journal, role);
  });
}

kj::Promise<std::vector<SyncProgress>> PeerSession::sync(std::function<void(const SyncProgress&)> progress) {
  auto results = std::make_shared<std::vector<SyncProgress>>();
  return remote_.journalsRequest().send().then([this, results,
                                                progress](capnp::Response<rpc::Node::JournalsResults>&& response) {
    kj::Promise<void> chain = kj::READY_NOW;
    for (auto id : response.getIds()) {
      JournalId journal = key32(id);
      if (!replicator_.mayReplicate(journal, peer_)) continue;
      chain = chain.then([this, journal, results, progress]() {
        auto req = remote_.journalRequest();
        req.setId(kj::arrayPtr(journal.data(), journal.size()));
        rpc::Journal::Client cap = req.send().getJournal();
        auto state = std::make_shared<SyncProgress>();
        state->journal = journal;
        return cap.headsRequest().send().then([this, cap, state, results,
                                               progress](capnp::Response<rpc::Journal::HeadsResults>&& heads) mutable {
          VersionVector remote = readHeads(heads.getHeads());
          VersionVector local = replicator_.store().versionVector(state->journal);
          auto info = replicator_.store().journal(state->journal);
          auto wants = std::make_shared<std::vector<protocol::Want>>(
              protocol::missing(local, remote, info ? info->owner : crypto::PublicKey{}));
          state->expected = protocol::count(*wants);
          return pull(cap, state, wants, 0, false, progress)
              .then([this, cap, state, remote, progress]() mutable { return pushAll(cap, state, remote, progress); })
              .then([state, results]() { results->push_back(*state); });
        });
      });
    }
    return chain.then([results]() { return kj::mv(*results); });
  });
}

// Fetches want `index` in batches until it is complete or the peer stops giving; a want that
// failed (entries refused because an earlier chain was missing) is tried again in another round
// while rounds make progress.
kj::Promise<void> PeerSession::pull(rpc::Journal::Client journal, std::shared_ptr<SyncProgress> progress,
                                    std::shared_ptr<std::vector<protocol::Want>> wants, size_t index, bool progressed,
                                    std::function<void(const SyncProgress&)> onProgress) {
  if (index == wants->size()) {
    // End of a round: drop the complete wants; go again if something moved and something is left.
    VersionVector local = replicator_.store().versionVector(progress->journal);
    std::vector<protocol::Want> left;
    for (auto w : *wants) {
      uint64_t have = local.count(w.author) ? local[w.author] : 0;
      if (have < w.toSeq) left.push_back({w.author, have + 1, w.toSeq});
    }
    if (left.empty() || !progressed) return kj::READY_NOW;
    *wants = std::move(left);
    return pull(journal, progress, wants, 0, false, onProgress);
  }
  protocol::Want want = (*wants)[index];
  auto head = replicator_.store().head(progress->journal, want.author);
  uint64_t from = head ? head->seq + 1 : 1;
  if (from > want.toSeq) return pull(journal, progress, wants, index + 1, progressed, onProgress);
  auto req = journal.fetchRequest();
  req.setAuthor(kj::arrayPtr(want.author.data(), want.author.size()));
  req.setFromSeq(from);
  req.setLimit(static_cast<uint32_t>(BATCH_ENTRIES_MAX));
  return req.send().then([this, journal, progress, wants, index, progressed, onProgress, want,
                          from](capnp::Response<rpc::Journal::FetchResults>&& response) mutable {
    auto entries = response.getEntries();
    if (entries.size() == 0) return pull(journal, progress, wants, index + 1, progressed, onProgress);
    uint64_t before = replicator_.ingestedCount();
    VersionVector heads = replicator_.ingest(progress->journal, entries, peer_);
    uint64_t stored = replicator_.ingestedCount() - before;
    progress->received += stored;
    if (onProgress) onProgress(*progress);
    uint64_t now = heads.count(want.author) ? heads[want.author] : 0;
    if (now < from) {
      // Nothing of this author was accepted: move on; another round may succeed.
      return pull(journal, progress, wants, index + 1, progressed, onProgress);
    }
    return pull(journal, progress, wants, index, true, onProgress);
  });
}

kj::Promise<void> PeerSession::pushAll(rpc::Journal::Client journal, std::shared_ptr<SyncProgress> progress,
                                       VersionVector remote, std::function<void(const SyncProgress&)> onProgress) {
  // Checked before every batch: a removal may have arrived meanwhile.
  if (!replicator_.mayReplicate(progress->journal, peer_)) return kj::READY_NOW;
  VersionVector offered = remote;
  std::vector<Bytes> batch = entriesBeyond(replicator_.store(), progress->journal, remote, offered);
  if (batch.empty()) return kj::READY_NOW;
  auto req = journal.pushRequest();
  fillEntries(req.initEntries(static_cast<unsigned>(batch.size())), batch);
  return req.send().then([this, journal, progress, remote, offered,
                          onProgress](capnp::Response<rpc::EntrySink::PushResults>&& response) mutable {
    VersionVector heads = readHeads(response.getHeads());
    uint64_t accepted = 0;
    bool moved = false;
    for (const auto& [author, seq] : heads) {
      uint64_t before = remote.count(author) ? remote[author] : 0;
      if (seq > before) {
        accepted += seq - before;
        moved = true;
        remote[author] = seq;
      }
    }
    progress->sent += accepted;
    if (onProgress) onProgress(*progress);
    // Stop when the peer took nothing: it refuses the rest, and trying again would loop.
    if (!moved) return kj::Promise<void>(kj::READY_NOW);
    return pushAll(journal, progress, remote, onProgress);
  });
}

}  // namespace kith::node
