#include "node/session.h"

#include <capnp/message.h>
#include <kj/debug.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "node/send-queue.h"
#include "protocol/roles.h"

namespace kith::node {
namespace {

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
    return replicator_.ingest(journal_, context.getParams().getEntries(), peer_)
        .then([context](VersionVector&& heads) mutable {
          fillHeads(context.getResults().initHeads(static_cast<unsigned>(heads.size())), heads);
        });
  }

private:
  Replicator& replicator_;
  JournalId journal_;
  crypto::PublicKey peer_;
};

}  // namespace

// The connection's budget: the send queue's meter (node/send-queue.h) and the session to tell
// when the peer's journals changed.
class SessionBudget final : public ConnectionBudget {
public:
  size_t sendQueueBytes() override { return meter->queued(); }
  kj::Promise<void> whenSendQueueBelow(size_t bytes) override { return meter->whenBelow(bytes); }

  // The peer says the journals it shares with us changed: the session scans again.
  void journalsChanged() override {
    if (session_ != nullptr) session_->rescan();
  }

  std::shared_ptr<SendQueueMeter> meter = std::make_shared<SendQueueMeter>();
  PeerSession* session_ = nullptr;  // cleared when the session goes
};

namespace {

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
      metered_(kj::heap<MeteredStream>(*connection_.stream, budget_->meter, SEND_QUEUE_PAUSE_READ_BYTES)),
      redeemedPromise_(nullptr),
      network_(*metered_, initiator ? capnp::rpc::twoparty::Side::CLIENT : capnp::rpc::twoparty::Side::SERVER,
               connectionReaderOptions(RPC_MESSAGE_WORDS_MAX)),
      rpc_(capnp::makeRpcServer(network_, serviceFor(replicator, peer_, mode, budget_,
                                                     [this]() {
                                                       if (redeemed_->isWaiting()) redeemed_->fulfill();
                                                     }))),
      // A redeemer is asked nothing: not even for its bootstrap.
      remote_(mode == Mode::REDEEMER ? rpc::Node::Client(nullptr) : bootstrapOf(rpc_, initiator)), tasks_(*this) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  redeemed_ = kj::mv(paf.fulfiller);
  redeemedPromise_ = paf.promise.fork();
  budget_->meter->network = &network_;
  budget_->session_ = this;
  rpc_.setFlowLimit(RPC_FLOW_LIMIT_WORDS);
  replicator_.addListener(this);
}

PeerSession::~PeerSession() noexcept(false) {
  replicator_.removeListener(this);
  budget_->meter->network = nullptr;
  budget_->session_ = nullptr;
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
  // A grant here (or a journal new here) shares more with the peer: subscribe to it, and tell the
  // peer, which subscribes in turn. Only in live mode, and only when the set really changed (most
  // changes are posts).
  if (mode_ != Mode::PEER || !live_) return;
  std::vector<JournalId> shared;
  try {
    shared = sharedHere();
  } catch (...) {
    return;  // the store did not answer: the next change looks again
  }
  if (shared == shared_) return;
  bool gained = std::any_of(shared.begin(), shared.end(), [this](const JournalId& j) {
    return !std::binary_search(shared_.begin(), shared_.end(), j);
  });
  shared_ = std::move(shared);
  if (!gained) return;
  rescan();
  tasks_.add(remote_.journalsChangedRequest().send().ignoreResult().catch_([this](kj::Exception&& e) {
    // A peer of an older version does not know the call: it finds the journal at its next connection.
    replicator_.log().debug("[peer {}] could not tell the peer of a new shared journal: {}", shortId(peer_),
                            e.getDescription().cStr());
  }));
}

std::vector<JournalId> PeerSession::sharedHere() const {
  std::vector<JournalId> out = replicator_.journalsFor(peer_);
  std::sort(out.begin(), out.end());
  return out;
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

void PeerSession::rescan() {
  if (mode_ != Mode::PEER || !live_) return;
  if (scanning_) {
    scanAgain_ = true;
    return;
  }
  scanning_ = true;
  scanAgain_ = false;
  // A failed scan (our store, or a call the peer refused) is logged and tried again after a
  // growing delay; a dead connection ends the session through onDisconnect() instead.
  tasks_.add(scanJournals().then(
      [this]() { scanDone(true); },
      [this](kj::Exception&& e) {
        logLoopFailure(replicator_.log(), ("[peer " + shortId(peer_) + "] asking which journals we share").c_str(),
                       scanFailures_ + 1, e);
        scanDone(false);
      }));
}

void PeerSession::scanDone(bool ok) {
  scanning_ = false;
  if (ok) {
    scanFailures_ = 0;
    if (scanAgain_) rescan();
    return;
  }
  ++scanFailures_;
  tasks_.add(timer_.afterDelay(loopRetryDelay(scanFailures_)).then([this]() { rescan(); }));
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
  live_ = true;
  try {
    shared_ = sharedHere();
  } catch (...) {
    // The store did not answer: the first change looks again.
  }
  rescan();
  return network_.onDisconnect().then([this]() -> kj::Promise<void> {
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

// The catch-up of one journal from the peer: batches fetched in order of the wants, several at a
// time, and handed to the verifying pool as they arrive (ingest keeps their order), while at most
// SYNC_FETCHES_IN_FLIGHT batches are fetched or being verified at once (about 1 MiB each).
struct PeerSession::Pull {
  struct Fetch {
    crypto::PublicKey author;
    uint64_t from;
    uint64_t limit;
    kj::Promise<capnp::Response<rpc::Journal::FetchResults>> answer;
  };
  // Asks the peer for `limit` entries of `author` from `from` on.
  Fetch ask(const crypto::PublicKey& author, uint64_t from, uint64_t limit) {
    auto req = journal.fetchRequest();
    req.setAuthor(kj::arrayPtr(author.data(), author.size()));
    req.setFromSeq(from);
    req.setLimit(static_cast<uint32_t>(limit));
    return {author, from, limit, req.send()};
  }
  rpc::Journal::Client journal{nullptr};
  std::shared_ptr<SyncProgress> progress;
  std::function<void(const SyncProgress&)> onProgress;
  std::vector<protocol::Want> wants;  // this round's
  size_t want = 0;                    // the want being fetched
  uint64_t nextFrom = 0;              // its next seq to ask for
  std::deque<Fetch> fetches;          // asked, in order
  std::deque<kj::Promise<void>> ingests;
  // The seq each author's next answer must start at (answers are taken in the order asked, a short
  // one followed by a fetch of its gap); 0: the peer had nothing more of this author, stop asking.
  std::map<crypto::PublicKey, uint64_t> expect;
  bool progressed = false;  // something of this round was stored
};

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
          auto p = std::make_shared<Pull>();
          p->journal = cap;
          p->progress = state;
          p->onProgress = progress;
          // A journal not held yet: its owner is not known here, but it is most often the peer we
          // follow it from (the inviting node), so its chain goes first (it authorises the rest).
          p->wants = protocol::missing(local, remote, info ? info->owner : peer_);
          state->expected = protocol::count(p->wants);
          if (!p->wants.empty()) p->nextFrom = p->wants[0].fromSeq;
          return pull(p)
              .then([this, cap, state, remote, progress]() mutable { return pushAll(cap, state, remote, progress); })
              .then([state, results]() { results->push_back(*state); });
        });
      });
    }
    return chain.then([results]() { return kj::mv(*results); });
  });
}

// Keeps the window full, then waits for the oldest fetch (or, when enough are being verified, the
// oldest verification); at the end of a round, goes again if something moved and something is left.
kj::Promise<void> PeerSession::pull(std::shared_ptr<Pull> p) {
  while (p->fetches.size() + p->ingests.size() < SYNC_FETCHES_IN_FLIGHT && p->want < p->wants.size()) {
    const protocol::Want& w = p->wants[p->want];
    if (p->nextFrom > w.toSeq || (p->expect.count(w.author) && p->expect[w.author] == 0)) {
      if (++p->want < p->wants.size()) p->nextFrom = p->wants[p->want].fromSeq;
      continue;
    }
    if (p->expect.count(w.author) == 0) p->expect[w.author] = p->nextFrom;
    p->fetches.push_back(p->ask(w.author, p->nextFrom, BATCH_ENTRIES_MAX));
    p->nextFrom += BATCH_ENTRIES_MAX;
  }
  if (!p->fetches.empty() && p->ingests.size() < SYNC_FETCHES_IN_FLIGHT / 2) return pullAnswer(p);
  if (!p->ingests.empty()) {
    auto next = kj::mv(p->ingests.front());
    p->ingests.pop_front();
    return next.then([this, p]() { return pull(p); });
  }
  if (!p->fetches.empty()) return pullAnswer(p);
  // End of a round: keep what is still missing; go again if something moved.
  VersionVector local = replicator_.store().versionVector(p->progress->journal);
  std::vector<protocol::Want> left;
  for (const auto& w : p->wants) {
    uint64_t have = local.count(w.author) ? local[w.author] : 0;
    if (have < w.toSeq &&
        std::none_of(left.begin(), left.end(), [&](const protocol::Want& l) { return l.author == w.author; })) {
      left.push_back({w.author, have + 1, w.toSeq});
    }
  }
  if (left.empty() || !p->progressed) return kj::READY_NOW;
  p->wants = std::move(left);
  p->want = 0;
  p->nextFrom = p->wants[0].fromSeq;
  p->expect.clear();
  p->progressed = false;
  return pull(p);
}

kj::Promise<void> PeerSession::pullAnswer(std::shared_ptr<Pull> p) {
  auto fetch = kj::mv(p->fetches.front());
  p->fetches.pop_front();
  crypto::PublicKey author = fetch.author;
  uint64_t from = fetch.from;
  uint64_t limit = fetch.limit;
  return fetch.answer.then([this, p, author, from, limit](capnp::Response<rpc::Journal::FetchResults>&& response) {
    auto entries = response.getEntries();
    uint64_t& expect = p->expect[author];
    if (expect != from) return pull(p);  // this author was stopped (an empty answer before it)
    if (entries.size() == 0) {
      // The peer has nothing more of this author (it listed more): stop asking it this round.
      expect = 0;
      return pull(p);
    }
    uint64_t n = std::min<uint64_t>(entries.size(), limit);
    expect = from + n;
    uint64_t toSeq = 0;
    for (const auto& w : p->wants) {
      if (w.author == author) toSeq = std::max(toSeq, w.toSeq);
    }
    if (n < limit && from + n <= toSeq) {
      // A short answer (its byte limit): fill the gap before the answers already asked for beyond
      // it, which stay good. The window does not grow: this answer has just left it.
      p->fetches.push_front(p->ask(author, from + n, limit - n));
    }
    uint64_t bytes = 0;  // counted by ingest as it copies them: the entries are read only once
    auto ingesting = replicator_.ingest(p->progress->journal, entries, peer_, &bytes);
    p->ingests.push_back(ingesting.then([p, author, from, n, bytes](VersionVector&& heads) {
      uint64_t now = heads.count(author) ? heads[author] : 0;
      if (now >= from) {
        p->progressed = true;
        p->progress->received += std::min(n, now - from + 1);
      }
      p->progress->receivedBytes += bytes;
      if (p->onProgress) p->onProgress(*p->progress);
    }));
    return pull(p);
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
