#include "node/replicator.h"

#include <capnp/message.h>
#include <kj/debug.h>

#include <cstring>
#include <map>

#include "protocol/invite.h"

namespace kith::node {

using protocol::Entry;

std::string shortId(ByteView key) { return toHex(key).substr(0, 8); }

kj::Duration loopRetryDelay(unsigned failures) {
  uint64_t ms = LOOP_RETRY_INITIAL_MS;
  for (unsigned i = 1; i < failures && ms < LOOP_RETRY_MAX_MS; ++i) ms *= 2;
  return std::min<uint64_t>(ms, LOOP_RETRY_MAX_MS) * kj::MILLISECONDS;
}

void logLoopFailure(spdlog::logger& log, const char* loop, unsigned failures, const kj::Exception& e) {
  if (failures <= LOOP_FAILURES_LOGGED || failures % LOOP_FAILURES_LOG_EVERY == 0) {
    log.error("{} failed ({} time{} in a row), retrying in {} ms: {}", loop, failures, failures == 1 ? "" : "s",
              loopRetryDelay(failures) / kj::MILLISECONDS, e.getDescription().cStr());
  }
}

namespace {

// What the exception being handled says, as a kj::Exception (the form a promise is rejected with).
// Call inside a catch block only.
kj::Exception currentFailure() {
  try {
    throw;
  } catch (const kj::Exception& e) { return kj::cp(e); } catch (const std::exception& e) {
    return nodeException(kj::Exception::Type::FAILED, e.what());
  } catch (...) { return nodeException(kj::Exception::Type::FAILED, "an unknown error"); }
}

Key32 key32(capnp::Data::Reader d, const char* what) {
  if (d.size() != 32) KJ_FAIL_REQUIRE("malformed request: a key or id is not 32 bytes", what);
  Key32 k;
  std::memcpy(k.data(), d.begin(), 32);
  return k;
}

}  // namespace

VersionVector readHeads(capnp::List<rpc::Head>::Reader heads) {
  KJ_REQUIRE(heads.size() <= HEADS_MAX, "too many heads");
  VersionVector vv;
  for (auto h : heads) vv[key32(h.getAuthor(), "head author")] = h.getSeq();
  return vv;
}

void fillHeads(capnp::List<rpc::Head>::Builder out, const VersionVector& vv) {
  unsigned i = 0;
  for (const auto& [author, seq] : vv) {
    out[i].setAuthor(kj::arrayPtr(author.data(), author.size()));
    out[i].setSeq(seq);
    ++i;
  }
}

void fillEntries(capnp::List<schema::SignedEntry>::Builder out, const std::vector<Bytes>& packed) {
  for (unsigned i = 0; i < packed.size(); ++i) {
    const Bytes& p = packed[i];
    out[i].setSignature(kj::arrayPtr(p.data(), crypto::SIGNATURE_BYTES));
    out[i].setEntry(kj::arrayPtr(p.data() + crypto::SIGNATURE_BYTES, p.size() - crypto::SIGNATURE_BYTES));
  }
}

std::vector<Bytes> entriesBeyond(const store::Store& store, const JournalId& journal, const VersionVector& have,
                                 VersionVector& lastSeqs) {
  std::vector<Bytes> out;
  auto info = store.journal(journal);
  if (!info) return out;
  size_t bytes = 0;
  for (const auto& want : protocol::missing(have, store.versionVector(journal), info->owner)) {
    if (out.size() >= BATCH_ENTRIES_MAX || bytes >= BATCH_BYTES_MAX) break;
    size_t bytesLeft = BATCH_BYTES_MAX - bytes;
    auto range = store.rangePacked(journal, want.author, want.fromSeq, BATCH_ENTRIES_MAX - out.size(), bytesLeft);
    // A stored chain has no gaps, so the range holds seqs fromSeq, fromSeq + 1, ...: no need to
    // decode (and verify) the entries just to learn their seqs.
    if (!range.empty()) lastSeqs[want.author] = want.fromSeq + range.size() - 1;
    for (Bytes& p : range) {
      bytes += p.size();
      out.push_back(std::move(p));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Replicator

Replicator::Replicator(store::Store& store, const crypto::Identity& identity, ByteView storageKey, spdlog::logger& log,
                       FollowsFrom followsFrom)
    : store_(store), identity_(identity), storageKey_(storageKey), log_(log), followsFrom_(std::move(followsFrom)),
      tasks_(*this) {
  lastChange_ = store_.changeCounter();
}

Replicator::~Replicator() noexcept(false) {}

void Replicator::taskFailed(kj::Exception&& exception) {
  log_.error("replication: {}", exception.getDescription().cStr());
}

// A batch received from a peer, from its arrival to its commit.
struct Replicator::Pending {
  JournalId journal;
  PublicKey peer;
  size_t entries = 0;
  std::optional<std::vector<Verified>> verified;  // set once the pool is done
  kj::Maybe<kj::Exception> failure;               // or this, when verification failed
  kj::Own<kj::PromiseFulfiller<VersionVector>> done;
};

kj::Promise<VersionVector> Replicator::ingest(const JournalId& journal,
                                              capnp::List<schema::SignedEntry>::Reader entries, const PublicKey& peer,
                                              uint64_t* receivedBytes) {
  KJ_REQUIRE(entries.size() <= BATCH_ENTRIES_MAX, "push over the batch limit");
  requireReplicates(journal, peer, entries.size());
  std::vector<RawEntry> raw;
  raw.reserve(entries.size());
  size_t bytes = 0;
  uint64_t withSignatures = 0;
  for (auto se : entries) {
    auto entryBytes = se.getEntry();
    auto sig = se.getSignature();
    bytes += entryBytes.size();
    withSignatures += entryBytes.size() + sig.size();
    KJ_REQUIRE(bytes <= BATCH_BYTES_MAX + protocol::ENTRY_BYTES_MAX, "push over the byte limit");
    raw.push_back({Bytes(entryBytes.begin(), entryBytes.end()), Bytes(sig.begin(), sig.end())});
  }
  if (receivedBytes != nullptr) *receivedBytes = withSignatures;
  auto pending = std::make_shared<Pending>();
  pending->journal = journal;
  pending->peer = peer;
  pending->entries = raw.size();
  auto paf = kj::newPromiseAndFulfiller<VersionVector>();
  pending->done = kj::mv(paf.fulfiller);
  // Queued now, so that batches commit in the order they arrived whatever order the workers finish
  // in (a chain's next batch must not be judged before the one it continues).
  commits_.push_back(pending);
  if (!pool_) pool_ = std::make_unique<VerifyPool>();
  tasks_.add(pool_->verify(std::move(raw))
                 .then(
                     [this, pending](std::vector<Verified>&& verified) {
                       pending->verified = std::move(verified);
                       scheduleCommit();
                     },
                     [this, pending](kj::Exception&& e) {
                       pending->failure = kj::mv(e);
                       scheduleCommit();
                     }));
  return kj::mv(paf.promise);
}

void Replicator::requireReplicates(const JournalId& journal, const PublicKey& peer, size_t entries) {
  // Whoever offers entries, through whichever path (a push to our journal, a push into the sink we
  // gave, the answer to our fetch), must be someone we replicate this journal with.
  if (mayReplicate(journal, peer)) return;
  log_.warn("[peer {}] journal {}: refused {} entries: not a member", shortId(peer), shortId(journal), entries);
  kj::throwFatalException(nodeException(kj::Exception::Type::FAILED, "not a member of this journal"));
}

void Replicator::scheduleCommit() {
  if (commitScheduled_) return;
  commitScheduled_ = true;
  // Once the loop has run everything else queued (more batches the workers finished meanwhile),
  // so that one write transaction takes them all.
  tasks_.add(kj::evalLast([this]() {
    commitScheduled_ = false;
    commitReady();
  }));
}

void Replicator::commitReady() {
  auto ready = [](const Pending& p) { return p.verified.has_value() || p.failure != nullptr; };
  while (!commits_.empty() && ready(*commits_.front())) {
    // The ready batches at the front, up to one transaction's worth (at least one).
    std::vector<std::shared_ptr<Pending>> group;
    size_t total = 0;
    while (!commits_.empty() && ready(*commits_.front()) &&
           (group.empty() || total + commits_.front()->entries <= COMMIT_ENTRIES_MAX)) {
      total += commits_.front()->entries;
      group.push_back(std::move(commits_.front()));
      commits_.pop_front();
    }
    // What each batch adds to the transaction: its entries that decoded, of its journal, from a
    // peer still allowed (a removal may have come while it was verified).
    struct Part {
      std::shared_ptr<Pending> pending;
      size_t begin = 0;           // in `all`
      std::vector<size_t> index;  // of each entry of `all` from this batch, in the batch
      std::set<PublicKey> authors;
      unsigned rejected = 0;

      // Logs a refused entry of this batch (the first few; the rest are counted).
      void refuse(spdlog::logger& log, const std::string& what) {
        if (rejected++ < REJECTIONS_LOGGED_PER_BATCH) {
          log.warn("[peer {}] journal {}: refused an entry: {}", shortId(pending->peer), shortId(pending->journal),
                   what);
        }
      }
    };
    std::vector<Part> parts;
    std::vector<Entry> all;
    for (auto& p : group) {
      Part part;
      part.pending = p;
      part.begin = all.size();
      KJ_IF_MAYBE(e, p->failure) {
        p->done->reject(kj::cp(*e));
        continue;
      }
      try {
        requireReplicates(p->journal, p->peer, p->entries);  // again: a removal may have come meanwhile
      } catch (...) {
        p->done->reject(currentFailure());
        continue;
      }
      auto& verified = *p->verified;
      for (size_t i = 0; i < verified.size(); ++i) {
        Verified& v = verified[i];
        if (!v.entry) {
          part.refuse(log_, std::string(protocol::rejectionName(v.reason)) + ": " + v.message);
          continue;
        }
        if (v.entry->journal != p->journal) {
          part.refuse(log_, "it belongs to another journal");
          continue;
        }
        part.authors.insert(v.entry->author);
        part.index.push_back(i);
        all.push_back(std::move(*v.entry));
      }
      parts.push_back(std::move(part));
    }
    std::vector<store::AppendOutcome> outcomes;
    if (!all.empty()) {
      try {
        store::Keyring keyring{identity_, storageKey_};
        outcomes = store_.appendBatch(all, &keyring);
      } catch (...) {
        auto failure = currentFailure();
        for (auto& part : parts) part.pending->done->reject(kj::cp(failure));
        continue;
      }
    }
    bool changed = false;
    std::map<JournalId, VersionVector> heads;  // read once per journal, after the commit
    for (auto& part : parts) {
      Pending& p = *part.pending;
      uint64_t added = 0;
      uint64_t dropped = 0;
      std::map<PublicKey, uint64_t> forksNotKept;  // by author: fork evidence over its limit
      for (size_t k = 0; k < part.index.size(); ++k) {
        const store::AppendOutcome& o = outcomes[part.begin + k];
        const Entry& e = all[part.begin + k];
        dropped += o.dropped;
        if (o.status == store::AppendStatus::REJECTED && o.reason == protocol::Rejection::FORK && !o.evidenceKept) {
          // Counted, not logged one by one: a fork flood must not become a log flood.
          ++forksNotKept[e.author];
        } else if (o.status == store::AppendStatus::REJECTED) {
          part.refuse(log_, "author " + shortId(e.author) + " seq " + std::to_string(e.seq) + ": " +
                                protocol::rejectionName(o.reason) + ": " + o.message);
        } else if (o.status == store::AppendStatus::ADDED) {
          ++added;
        }
      }
      for (const auto& [author, n] : forksNotKept) {
        log_.warn(
            "[peer {}] journal {}: {} fork{} by author {} not kept (evidence is kept once per seq, {} per author)",
            shortId(p.peer), shortId(p.journal), n, n == 1 ? "" : "s", shortId(author), store::FORKS_PER_AUTHOR_MAX);
      }
      if (dropped > 0) {
        drops_ += dropped;
        log_.info("journal {}: dropped {} entr{} (past a removal's cut-off, or refused once their epoch key arrived)",
                  shortId(p.journal), dropped, dropped == 1 ? "y" : "ies");
      }
      if (part.rejected > REJECTIONS_LOGGED_PER_BATCH) {
        log_.warn("[peer {}] journal {}: {} more entries refused in this batch", shortId(p.peer), shortId(p.journal),
                  part.rejected - REJECTIONS_LOGGED_PER_BATCH);
      }
      ingested_ += added;
      if (added > 0 || dropped > 0) changed = true;
      try {
        auto it = heads.find(p.journal);
        if (it == heads.end()) it = heads.emplace(p.journal, store_.versionVector(p.journal)).first;
        VersionVector answer;
        for (const auto& a : part.authors) {
          auto h = it->second.find(a);
          answer[a] = h == it->second.end() ? 0 : h->second;
        }
        p.done->fulfill(kj::mv(answer));
      } catch (...) { p.done->reject(currentFailure()); }
    }
    if (changed) {
      // Our own commit: the store watch will see it too, but everyone is told now (and a commit by
      // another process before it is covered, since every subscription reads the store afresh).
      try {
        lastChange_ = store_.changeCounter();
      } catch (...) { storeFailed_ = true; }
      notifyChanged();
    }
  }
}

bool Replicator::mayAccess(const JournalId& journal, const PublicKey& peer) const {
  auto m = store_.member(journal, peer);
  return m && m->active;
}

std::vector<JournalId> Replicator::journalsFor(const PublicKey& peer) const {
  std::vector<JournalId> out;
  for (const auto& j : store_.journals()) {
    if (mayAccess(j.id, peer)) out.push_back(j.id);
  }
  return out;
}

bool Replicator::mayReplicate(const JournalId& journal, const PublicKey& peer) const {
  if (store_.journal(journal)) return mayAccess(journal, peer);
  return followsFrom_(journal, peer);
}

bool Replicator::knows(const PublicKey& peer) const { return !journalsFor(peer).empty(); }

bool Replicator::pollStore() {
  size_t change = 0;
  size_t written = 0;
  try {
    change = store_.changeCounter();
    written = store_.writtenCounter();
  } catch (...) {
    storeFailed_ = true;
    throw;
  }
  // After a failure, wake everyone even without a new commit: a push may have failed meanwhile.
  if (change != lastChange_ || storeFailed_) {
    lastChange_ = change;
    storeFailed_ = false;
    notifyChanged();
  }
  // A commit written but not yet published to readers: it will be in a moment, and no write to
  // the file will say so.
  return written > change;
}

// ---------------------------------------------------------------------------------------------
// Subscription: pushes what the subscriber lacks, then live updates.

class Subscription final : public rpc::Subscription::Server, private kj::TaskSet::ErrorHandler {
public:
  Subscription(Replicator& replicator, const JournalId& journal, const PublicKey& peer, rpc::EntrySink::Client sink,
               VersionVector have, std::shared_ptr<ConnectionBudget> budget)
      : replicator_(replicator), journal_(journal), peer_(peer), sink_(kj::mv(sink)), sent_(kj::mv(have)),
        budget_(kj::mv(budget)), tasks_(*this) {
    replicator_.subscriptions_.insert(this);
    ++budget_->subscriptions;
  }
  ~Subscription() noexcept(false) {
    replicator_.subscriptions_.erase(this);
    --budget_->subscriptions;
  }

  void kick() {
    dirty_ = true;
    pump();
  }

private:
  void pump() {
    try {
      pumpOnce();
    } catch (const kj::Exception& e) { storeFailed(e.getDescription().cStr()); } catch (const std::exception& e) {
      storeFailed(e.what());
    }
  }

  // Reading our own store failed (the subscriber did nothing wrong): stay dirty, and let the
  // store watch wake us again once the store answers (Replicator::pollStore).
  void storeFailed(const std::string& what) {
    replicator_.storeFailed_ = true;
    replicator_.log().error("[peer {}] journal {}: could not read the store for live updates, will retry: {}",
                            shortId(peer_), shortId(journal_), what);
  }

  void pumpOnce() {
    while (!failed_ && dirty_ && inFlight_ < PUSHES_IN_FLIGHT_MAX && !waitingForQueue_) {
      // The connection's send queue is shared by all its subscriptions and answers: push only while
      // it is short, and go on when the socket has taken enough.
      if (budget_->sendQueueBytes() >= SEND_QUEUE_PUSH_BYTES) {
        waitingForQueue_ = true;
        tasks_.add(budget_->whenSendQueueBelow(SEND_QUEUE_PUSH_BYTES).then([this]() {
          waitingForQueue_ = false;
          pump();
        }));
        break;
      }
      // Membership is checked before every push, as JournalServer checks it at every call: a
      // member removed while subscribed must get nothing more.
      if (!replicator_.mayAccess(journal_, peer_)) {
        replicator_.log().warn("[peer {}] journal {}: live updates stopped: no longer a member", shortId(peer_),
                               shortId(journal_));
        failed_ = true;
        break;
      }
      // After entries were dropped here (past a removal's cut-off), what we hold went down: count
      // no author as sent beyond our own head, or a chain that grows again would be skipped. (Not
      // at every push: a subscriber ahead of us would get back what it sent us.)
      if (dropsSeen_ != replicator_.drops_) {
        dropsSeen_ = replicator_.drops_;
        VersionVector mine = replicator_.store().versionVector(journal_);
        for (auto& [author, seq] : sent_) {
          auto it = mine.find(author);
          uint64_t head = it == mine.end() ? 0 : it->second;
          if (seq > head) seq = head;
        }
      }
      // `offered` is this batch's last seq per author: with pushes in flight, sent_ already counts
      // the later batches, so an answer is judged against its own batch only.
      VersionVector offered;
      std::vector<Bytes> batch = entriesBeyond(replicator_.store(), journal_, sent_, offered);
      if (batch.empty()) {
        dirty_ = false;
        break;
      }
      auto req = sink_.pushRequest();
      fillEntries(req.initEntries(static_cast<unsigned>(batch.size())), batch);
      // Optimistically count the batch as delivered, so that the next push goes on from there.
      for (const auto& [author, last] : offered) {
        uint64_t& seq = sent_[author];
        seq = std::max(seq, last);
      }
      ++inFlight_;
      tasks_.add(
          req.send().then([this, offered = kj::mv(offered)](capnp::Response<rpc::EntrySink::PushResults>&& response) {
            --inFlight_;
            bool behind = false;
            for (const auto& [author, seq] : readHeads(response.getHeads())) {
              auto mine = offered.find(author);
              if (mine == offered.end() || seq >= mine->second) continue;
              auto it = sent_.find(author);
              if (it != sent_.end() && seq < it->second) {
                // The subscriber refused part of the batch: go back to what it holds, and try again
                // only when something changes here, so that a refusal cannot loop.
                it->second = seq;
                behind = true;
              }
            }
            if (behind) dirty_ = false;
            pump();
          }));
    }
  }

  void taskFailed(kj::Exception&& exception) override {
    if (!failed_) {
      replicator_.log().info("[peer {}] journal {}: live updates stopped: {}", shortId(peer_), shortId(journal_),
                             exception.getDescription().cStr());
    }
    failed_ = true;
  }

  Replicator& replicator_;
  JournalId journal_;
  PublicKey peer_;
  rpc::EntrySink::Client sink_;
  VersionVector sent_;
  std::shared_ptr<ConnectionBudget> budget_;  // the connection's, shared with its other services
  unsigned inFlight_ = 0;
  uint64_t dropsSeen_ = 0;  // Replicator::drops_ when sent_ was last brought down to our heads
  bool waitingForQueue_ = false;
  bool dirty_ = false;
  bool failed_ = false;
  kj::TaskSet tasks_;
};

void Replicator::notifyChanged() {
  // Copy: a kick may end a subscription, a listener may end a session.
  std::vector<Subscription*> subs(subscriptions_.begin(), subscriptions_.end());
  for (Subscription* s : subs) {
    if (subscriptions_.count(s)) s->kick();
  }
  std::vector<ChangeListener*> listeners(listeners_.begin(), listeners_.end());
  for (ChangeListener* l : listeners) {
    if (listeners_.count(l)) l->storeChanged();
  }
}

// ---------------------------------------------------------------------------------------------
// Services

namespace {

class JournalServer final : public rpc::Journal::Server {
public:
  JournalServer(Replicator& replicator, const JournalId& journal, const PublicKey& peer,
                std::shared_ptr<ConnectionBudget> budget)
      : replicator_(replicator), journal_(journal), peer_(peer), budget_(kj::mv(budget)) {}

  kj::Promise<void> push(PushContext context) override {
    requireAccess();
    return replicator_.ingest(journal_, context.getParams().getEntries(), peer_)
        .then([context](VersionVector&& heads) mutable {
          fillHeads(context.getResults().initHeads(static_cast<unsigned>(heads.size())), heads);
        });
  }

  kj::Promise<void> heads(HeadsContext context) override {
    requireAccess();
    VersionVector vv = replicator_.store().versionVector(journal_);
    fillHeads(context.getResults().initHeads(static_cast<unsigned>(vv.size())), vv);
    return kj::READY_NOW;
  }

  kj::Promise<void> fetch(FetchContext context) override {
    requireAccess();
    // An answer of up to BATCH_BYTES_MAX joins the peer's send queue: answer only while the queue
    // is short; a peer that asks faster than it reads waits, and beyond a few waiting fetches is
    // refused at once.
    if (budget_->sendQueueBytes() < SEND_QUEUE_FETCH_BYTES) {
      answerFetch(context);
      return kj::READY_NOW;
    }
    if (budget_->fetchesWaiting >= FETCHES_WAITING_MAX) {
      kj::throwFatalException(
          nodeException(kj::Exception::Type::OVERLOADED, "too many fetches at once: read the answers first"));
    }
    ++budget_->fetchesWaiting;
    auto budget = budget_;
    auto done = kj::defer([budget]() { --budget->fetchesWaiting; });
    return budget_->whenSendQueueBelow(SEND_QUEUE_FETCH_BYTES)
        .then([this, context]() mutable {
          requireAccess();
          answerFetch(context);
        })
        .attach(kj::mv(done));
  }

  void answerFetch(FetchContext& context) {
    auto params = context.getParams();
    PublicKey author = key32(params.getAuthor(), "author");
    size_t limit = std::min<size_t>(params.getLimit(), BATCH_ENTRIES_MAX);
    std::vector<Bytes> packed;
    if (limit > 0 && params.getFromSeq() > 0) {
      packed = replicator_.store().rangePacked(journal_, author, params.getFromSeq(), limit, BATCH_BYTES_MAX);
    }
    fillEntries(context.getResults().initEntries(static_cast<unsigned>(packed.size())), packed);
  }

  kj::Promise<void> subscribe(SubscribeContext context) override {
    requireAccess();
    if (budget_->subscriptions >= SUBSCRIPTIONS_PER_PEER_MAX) {
      kj::throwFatalException(
          nodeException(kj::Exception::Type::OVERLOADED, "too many subscriptions on this connection"));
    }
    auto params = context.getParams();
    auto sub =
        kj::heap<Subscription>(replicator_, journal_, peer_, params.getSink(), readHeads(params.getHave()), budget_);
    sub->kick();
    context.getResults().setSubscription(kj::mv(sub));
    return kj::READY_NOW;
  }

private:
  // Membership is checked at every call, not only when the capability was handed out: a member
  // removed while connected loses access at once.
  void requireAccess() {
    if (!replicator_.mayAccess(journal_, peer_)) {
      replicator_.log().warn("[peer {}] journal {}: refused a call: no longer a member", shortId(peer_),
                             shortId(journal_));
      KJ_FAIL_REQUIRE("not a member of this journal");
    }
  }

  Replicator& replicator_;
  JournalId journal_;
  PublicKey peer_;
  std::shared_ptr<ConnectionBudget> budget_;
};

// redeemInvite, as both the member's Node and the redeemer's serve it.
using RedeemContext = capnp::CallContext<rpc::Node::RedeemInviteParams, rpc::Node::RedeemInviteResults>;
void redeemInvite(Replicator& replicator, const PublicKey& peer, RedeemContext& context) {
  auto secret = context.getParams().getSecret();
  KJ_REQUIRE(secret.size() == protocol::INVITE_SECRET_BYTES, "malformed invite secret");
  Key32 id = protocol::inviteId({secret.begin(), secret.size()});
  // One write transaction: the invite is open, the member is added, the invite is used.
  store::Keyring keyring{replicator.identity(), replicator.storageKey()};
  store::Redemption redeemed = replicator.store().redeemInvite(id, peer, nowMs(), keyring);
  std::string who = shortId(peer);
  if (redeemed.status != store::InviteStatus::OPEN) {
    replicator.log().warn("[peer {}] refused an invite: {}", who, store::inviteStatusText(redeemed.status));
    kj::throwFatalException(nodeException(kj::Exception::Type::FAILED, store::inviteStatusText(redeemed.status)));
  }
  const store::Invite* invite = &*redeemed.invite;
  replicator.log().info("[peer {}] redeemed an invite to journal {} as {}", who, shortId(invite->journal),
                        protocol::roleName(invite->role));
  replicator.notifyChanged();
  auto results = context.getResults();
  results.setJournal(kj::arrayPtr(invite->journal.data(), invite->journal.size()));
  results.setRole(static_cast<schema::Role>(invite->role));
}

class NodeServer final : public rpc::Node::Server {
public:
  NodeServer(Replicator& replicator, const PublicKey& peer, std::shared_ptr<ConnectionBudget> budget)
      : replicator_(replicator), peer_(peer), budget_(kj::mv(budget)) {}

  kj::Promise<void> journal(JournalContext context) override {
    JournalId id = key32(context.getParams().getId(), "journal id");
    if (!replicator_.mayAccess(id, peer_)) {
      replicator_.log().warn("[peer {}] refused journal {}: not a member", shortId(peer_), shortId(id));
      KJ_FAIL_REQUIRE("not a member of this journal");
    }
    context.getResults().setJournal(kj::heap<JournalServer>(replicator_, id, peer_, budget_));
    return kj::READY_NOW;
  }

  kj::Promise<void> redeemInvite(RedeemInviteContext context) override {
    kith::node::redeemInvite(replicator_, peer_, context);
    return kj::READY_NOW;
  }

  kj::Promise<void> journals(JournalsContext context) override {
    auto ids = replicator_.journalsFor(peer_);
    auto list = context.getResults().initIds(static_cast<unsigned>(ids.size()));
    for (unsigned i = 0; i < ids.size(); ++i) list.set(i, kj::arrayPtr(ids[i].data(), ids[i].size()));
    return kj::READY_NOW;
  }

  kj::Promise<void> journalsChanged(JournalsChangedContext) override {
    // One scan at a time runs, however often the peer calls (PeerSession::rescan).
    budget_->journalsChanged();
    return kj::READY_NOW;
  }

private:
  Replicator& replicator_;
  PublicKey peer_;
  std::shared_ptr<ConnectionBudget> budget_;
};

// What a key that is no member gets while an invite is open: redeemInvite, nothing else.
class RedeemerServer final : public rpc::Node::Server {
public:
  RedeemerServer(Replicator& replicator, const PublicKey& peer, std::function<void()> redeemed)
      : replicator_(replicator), peer_(peer), redeemed_(std::move(redeemed)) {}

  kj::Promise<void> journal(JournalContext) override { return refuse("journal"); }
  kj::Promise<void> journals(JournalsContext) override { return refuse("journals"); }
  kj::Promise<void> journalsChanged(JournalsChangedContext) override { return refuse("journalsChanged"); }

  kj::Promise<void> redeemInvite(RedeemInviteContext context) override {
    // Either way, this connection has had its one call: the node closes it soon.
    auto done = kj::defer([this]() {
      if (redeemed_) redeemed_();
    });
    kith::node::redeemInvite(replicator_, peer_, context);
    return kj::READY_NOW;
  }

private:
  kj::Promise<void> refuse(const char* call) {
    replicator_.log().warn("[peer {}] refused {}: not a member (only an invite can be redeemed)", shortId(peer_), call);
    return nodeException(kj::Exception::Type::FAILED,
                         "not a member of any journal here: only an invite can be redeemed");
  }

  Replicator& replicator_;
  PublicKey peer_;
  std::function<void()> redeemed_;
};

}  // namespace

rpc::Node::Client Replicator::nodeFor(const PublicKey& peer, std::shared_ptr<ConnectionBudget> budget) {
  return kj::heap<NodeServer>(*this, peer, kj::mv(budget));
}

rpc::Node::Client Replicator::redeemerFor(const PublicKey& peer, std::function<void()> redeemed) {
  return kj::heap<RedeemerServer>(*this, peer, std::move(redeemed));
}

}  // namespace kith::node
