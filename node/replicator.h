// Replication between trusted nodes: the RPC services of specs/rpc.capnp (Node, Journal,
// EntrySink, Subscription) over this node's store, and the shared state they use.
//
// A Replicator is the node's one view of its store for replication: it verifies and ingests entries
// that peers offer, decides which peer may see which journal, and wakes every live subscription
// when the store changes (after an ingest here, or when `kith post` in another process commits).
//
// Threading: the loop thread only.
// Caveats:
// - Every received entry is decoded and verified (protocol::decodeEntry) and appended through the
//   store's checks (chain, role, epoch, limits) in one write transaction per batch; a refused
//   entry is logged with its reason and stops that author's chain for the batch.
// - A subscription reads what to push from the store on demand and keeps at most
//   PUSHES_IN_FLIGHT_MAX pushes outstanding: a slow subscriber costs bounded memory.
#pragma once
#include <spdlog/logger.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include <kj/async.h>
#include <kj/time.h>

#include "node/limits.h"
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

class Replicator {
public:
  // `followed` says whether this node wants a journal it does not hold yet (config "follows").
  Replicator(store::Store& store, const crypto::Identity& identity, ByteView storageKey, spdlog::logger& log,
             std::function<bool(const JournalId&)> followed);
  KJ_DISALLOW_COPY(Replicator);

  store::Store& store() { return store_; }
  const crypto::Identity& identity() const { return identity_; }
  spdlog::logger& log() { return log_; }
  ByteView storageKey() const { return storageKey_; }

  // Verifies and stores entries offered by `peer` for `journal`; returns this node's heads for the
  // authors of the batch afterwards. Entries of another journal are refused.
  VersionVector ingest(const JournalId& journal, capnp::List<schema::SignedEntry>::Reader entries,
                       const PublicKey& peer);
  // The number of entries stored by ingest() since the replicator was made.
  uint64_t ingestedCount() const { return ingested_; }

  // True when `peer` may have the journal capability: an active member (any role) of it here.
  bool mayAccess(const JournalId& journal, const PublicKey& peer) const;
  // Journals held here that `peer` may access.
  std::vector<JournalId> journalsFor(const PublicKey& peer) const;
  // True when this node replicates the journal: it holds it or follows it.
  bool wants(const JournalId& journal) const;
  // True when `peer` shares at least one journal with this node (or is a followed journal's owner).
  bool knows(const PublicKey& peer) const;

  // Wakes every subscription (the store changed).
  void notifyChanged();
  // Called by the poller: notifies when the store's change counter moved, or when it answers again
  // after a failure. Throws when the store cannot be read (the poller logs and retries).
  void pollStore();

  // The Node capability served to an authenticated `peer`.
  rpc::Node::Client nodeFor(const PublicKey& peer);

private:
  friend class Subscription;
  store::Store& store_;
  const crypto::Identity& identity_;
  ByteView storageKey_;
  spdlog::logger& log_;
  std::function<bool(const JournalId&)> followed_;
  std::set<Subscription*> subscriptions_;
  size_t lastChange_ = 0;
  bool storeFailed_ = false;  // a read of the store failed since the last successful poll
  uint64_t ingested_ = 0;
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
