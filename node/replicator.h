// Replication between trusted nodes: the RPC services of specs/rpc.capnp (Node, Journal,
// EntrySink, Subscription) over this node's store, and the shared state they use.
//
// A Replicator is the node's one view of its store for replication: it verifies and ingests entries
// that peers offer, decides which peer may see which journal, and wakes every live subscription
// when the store changes (after an ingest here, or when `kith post` in another process commits).
//
// Threading: the loop thread only.
// Caveats:
// - Every received entry is decoded and verified (protocol::decodeEntry) on the worker threads of
//   a VerifyPool, then appended through the store's checks (chain, role, epoch, limits) on the loop
//   thread. Verified batches are committed in the order they arrived, all that are ready in one
//   write transaction per loop turn (up to COMMIT_ENTRIES_MAX entries); a refused entry is logged
//   with its reason and stops that author's chain.
// - A subscription reads what to push from the store on demand and keeps at most
//   PUSHES_IN_FLIGHT_MAX pushes outstanding: a slow subscriber costs bounded memory.
#pragma once
#include <spdlog/logger.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <kj/async.h>
#include <kj/time.h>

#include "node/limits.h"
#include "node/verify-pool.h"
#include "specs/rpc.capnp.h"
#include "store/journal.h"

namespace kith::node {

using protocol::JournalId;
using protocol::PublicKey;
using protocol::VersionVector;

// A short label for log lines: the first 8 hex digits of a key or id.
std::string shortId(ByteView key);

// The delay before a failed loop's next turn: LOOP_RETRY_INITIAL_MS doubled per consecutive
// failure, up to LOOP_RETRY_MAX_MS.
kj::Duration loopRetryDelay(unsigned failures);
// Logs the failure of one turn of a long-running loop (the first few, then every so often).
void logLoopFailure(spdlog::logger& log, const char* loop, unsigned failures, const kj::Exception& e);

class Subscription;

// What one connection may make this node hold (node/limits.h), shared by the services that serve
// that peer. The session that owns the connection meters it; a service asks before it adds to the
// peer's send queue.
class ConnectionBudget {
public:
  virtual ~ConnectionBudget() = default;
  // Bytes of messages queued to the peer that the socket has not taken yet.
  virtual size_t sendQueueBytes() = 0;
  // Resolves once fewer than `bytes` wait in the send queue (or the connection failed).
  virtual kj::Promise<void> whenSendQueueBelow(size_t bytes) = 0;
  // The peer called `journalsChanged`: whoever runs the connection asks it which journals it shares.
  virtual void journalsChanged() {}

  size_t subscriptions = 0;   // live subscriptions of the peer (SUBSCRIPTIONS_PER_PEER_MAX)
  size_t fetchesWaiting = 0;  // fetches waiting for the send queue (FETCHES_WAITING_MAX)
};

// A budget for a connection whose send queue nobody meters (in-process tests and the fuzzer): the
// queue always reads as empty; the counts still apply.
class UnmeteredBudget final : public ConnectionBudget {
public:
  size_t sendQueueBytes() override { return 0; }
  kj::Promise<void> whenSendQueueBelow(size_t) override { return kj::READY_NOW; }
};

// Told when the store changed (an ingest here, another process's commit): membership may have.
class ChangeListener {
public:
  virtual void storeChanged() = 0;

protected:
  ~ChangeListener() = default;
};

class Replicator final : private kj::TaskSet::ErrorHandler {
public:
  // `followsFrom(journal, peer)` says whether this node follows a journal it may not hold yet
  // (config "follows") and takes it from `peer` (the key given to `kith follow`, or the inviting
  // node).
  using FollowsFrom = std::function<bool(const JournalId&, const PublicKey&)>;
  Replicator(store::Store& store, const crypto::Identity& identity, ByteView storageKey, spdlog::logger& log,
             FollowsFrom followsFrom);
  ~Replicator() noexcept(false);
  KJ_DISALLOW_COPY(Replicator);

  store::Store& store() { return store_; }
  const crypto::Identity& identity() const { return identity_; }
  spdlog::logger& log() { return log_; }
  ByteView storageKey() const { return storageKey_; }

  // Verifies (on the pool) and stores entries offered by `peer` for `journal`; resolves with this
  // node's heads for the authors of the batch once they are committed. Entries of another journal
  // are refused; so is the whole batch (a kj FAILED exception) when this node may not replicate
  // the journal with `peer`, checked now and again at the commit. The entries are copied before
  // this returns: the message they came in may go.
  // `receivedBytes`, when given, gets the batch's entry and signature bytes (read once: reading a
  // message's data again counts against its traversal limit).
  kj::Promise<VersionVector> ingest(const JournalId& journal, capnp::List<schema::SignedEntry>::Reader entries,
                                    const PublicKey& peer, uint64_t* receivedBytes = nullptr);
  // The number of entries stored by ingest() since the replicator was made.
  uint64_t ingestedCount() const { return ingested_; }

  // True when `peer` may have the journal capability: an active member (any role) of it here.
  bool mayAccess(const JournalId& journal, const PublicKey& peer) const;
  // Journals held here that `peer` may access.
  std::vector<JournalId> journalsFor(const PublicKey& peer) const;
  // True when this node may exchange entries of `journal` with `peer` in either direction
  // (subscribe, pull, push, or take its pushes): the peer is an active member of the journal held
  // here, or, while the journal is not held yet, a peer this node follows it from.
  bool mayReplicate(const JournalId& journal, const PublicKey& peer) const;
  // True when `peer` shares at least one journal with this node (or is a followed journal's owner).
  bool knows(const PublicKey& peer) const;

  // Wakes every subscription and listener (the store changed).
  void notifyChanged();
  void addListener(ChangeListener* listener) { listeners_.insert(listener); }
  void removeListener(ChangeListener* listener) { listeners_.erase(listener); }
  // Called by the store watch: notifies when the store's change counter moved (another process
  // wrote), or when it answers again after a failure. Returns true when a commit is written but
  // not yet visible to readers (look again very soon: nothing else will say when it is). Throws
  // when the store cannot be read (the watch logs and retries).
  bool pollStore();

  // The Node capability served to an authenticated `peer` over a connection metered by `budget`.
  rpc::Node::Client nodeFor(const PublicKey& peer, std::shared_ptr<ConnectionBudget> budget);
  rpc::Node::Client nodeFor(const PublicKey& peer) { return nodeFor(peer, std::make_shared<UnmeteredBudget>()); }
  // The Node capability served to an invite redeemer: `redeemInvite` only; every other call is
  // refused. `redeemed` is called once an answer to redeemInvite (either way) is on its way.
  rpc::Node::Client redeemerFor(const PublicKey& peer, std::function<void()> redeemed);

private:
  friend class Subscription;
  struct Pending;
  // Logs and throws (kj FAILED "not a member of this journal") unless mayReplicate(journal, peer).
  void requireReplicates(const JournalId& journal, const PublicKey& peer, size_t entries);
  void scheduleCommit();
  void commitReady();
  void taskFailed(kj::Exception&& exception) override;

  store::Store& store_;
  const crypto::Identity& identity_;
  ByteView storageKey_;
  spdlog::logger& log_;
  FollowsFrom followsFrom_;
  std::set<Subscription*> subscriptions_;
  std::set<ChangeListener*> listeners_;
  size_t lastChange_ = 0;
  bool storeFailed_ = false;  // a read of the store failed since the last successful poll
  uint64_t ingested_ = 0;
  uint64_t drops_ = 0;                // entries ingest() saw the store drop (subscriptions recount what they sent)
  std::unique_ptr<VerifyPool> pool_;  // started at the first ingest
  std::deque<std::shared_ptr<Pending>> commits_;  // received batches, in arrival order
  bool commitScheduled_ = false;
  kj::TaskSet tasks_;
};

// Builds a list of SignedEntry from packed entries (signature || entry bytes).
void fillEntries(capnp::List<schema::SignedEntry>::Builder out, const std::vector<Bytes>& packed);
// Reads a Head list into a version vector; throws kj FAILED for malformed heads.
VersionVector readHeads(capnp::List<rpc::Head>::Reader heads);
void fillHeads(capnp::List<rpc::Head>::Builder out, const VersionVector& vv);
// The entries of `journal` beyond `have` (owner's chain first), at most BATCH_ENTRIES_MAX entries
// and about BATCH_BYTES_MAX bytes. `lastSeqs` gets the last seq of each author in the batch.
std::vector<Bytes> entriesBeyond(const store::Store& store, const JournalId& journal, const VersionVector& have,
                                 VersionVector& lastSeqs);

}  // namespace kith::node
