// One authenticated connection to a peer, running Cap'n Proto two-party RPC over the secure
// transport. Both ends serve their Node (Replicator::nodeFor) and use the other's.
//
// Live mode (`kith serve`): subscribe to every journal both sides replicate. Nothing is polled:
// the session asks the peer again which journals it shares when told to (the peer calls
// `journalsChanged` after a grant there) and when the journals it shares with the peer here
// change (a grant here; then it also tells the peer).
// Sync mode (`kith sync`, `kith follow`): pull what the peer has and we lack (ranged fetches in
// bounded batches, SYNC_FETCHES_IN_FLIGHT batches fetched or being verified at once), push what we
// have and the peer lacks, then finish.
// Redeemer mode (a key that is no member, while an invite is open): serve only `redeemInvite`,
// ask the peer nothing, and end REDEEMER_LINGER_MS after the answer or REDEEMER_LIFETIME_MS after
// the start.
//
// Whatever the mode, a journal's entries are exchanged with the peer only while
// Replicator::mayReplicate allows it: checked before subscribing, pulling and pushing, at every
// push received, and again whenever the store changes (a removal ends our subscription at once).
// The connection is metered (ConnectionBudget): reading the peer's calls pauses while more than
// SEND_QUEUE_PAUSE_READ_BYTES wait to be sent to it.
//
// Threading: the loop thread only.
// Caveats: a session must be destroyed before the Replicator it uses. A connection failure rejects
// run()/sync() with the reason; the caller logs it.
#pragma once
#include <capnp/rpc-twoparty.h>

#include <functional>
#include <map>

#include "node/replicator.h"
#include "node/secure-stream.h"

namespace kith::node {

struct SyncProgress {
  JournalId journal{};
  uint64_t received = 0;       // entries stored from this peer so far in this journal
  uint64_t receivedBytes = 0;  // their signed, encrypted bytes as received
  uint64_t expected = 0;       // entries the peer had that we lacked, when we asked
  uint64_t sent = 0;           // entries the peer accepted from us
};

class SessionBudget;

class PeerSession final : private kj::TaskSet::ErrorHandler, private ChangeListener {
public:
  enum class Mode { PEER, REDEEMER };
  PeerSession(Replicator& replicator, SecureConnection connection, bool initiator, kj::Timer& timer,
              Mode mode = Mode::PEER);
  ~PeerSession() noexcept(false);
  KJ_DISALLOW_COPY(PeerSession);

  const crypto::PublicKey& peer() const { return peer_; }
  bool initiator() const { return initiator_; }
  // Bytes queued to the peer that the socket has not taken yet.
  size_t sendQueueBytes() const;

  // Live replication until the connection ends; rejects with the reason it ended. In redeemer
  // mode: until the redeemer is done (see above).
  kj::Promise<void> run();
  // One round of catch-up both ways for every shared journal; `progress` is called after each
  // batch. Resolves with the per-journal totals.
  kj::Promise<std::vector<SyncProgress>> sync(std::function<void(const SyncProgress&)> progress);
  // Redeems an invite's secret; resolves with the journal and the role granted.
  kj::Promise<std::pair<JournalId, protocol::Role>> redeem(const Bytes& secret);

  // Asks the peer again which journals it shares, now (at most one scan at a time; a request during
  // a scan runs one more after it). The peer's `journalsChanged` call comes here.
  void rescan();

private:
  struct Pull;
  kj::Promise<void> scanJournals();
  void scanDone(bool ok);
  void subscribe(const JournalId& journal);
  void storeChanged() override;
  std::vector<JournalId> sharedHere() const;
  kj::Promise<void> pull(std::shared_ptr<Pull> pull);
  kj::Promise<void> pullAnswer(std::shared_ptr<Pull> pull);
  kj::Promise<void> pushAll(rpc::Journal::Client journal, std::shared_ptr<SyncProgress> progress, VersionVector remote,
                            std::function<void(const SyncProgress&)> onProgress);
  void taskFailed(kj::Exception&& exception) override;

  Replicator& replicator_;
  SecureConnection connection_;
  crypto::PublicKey peer_;
  bool initiator_;
  kj::Timer& timer_;
  Mode mode_;
  std::shared_ptr<SessionBudget> budget_;
  kj::Own<kj::AsyncIoStream> metered_;  // connection_.stream, metered by budget_
  kj::Own<kj::PromiseFulfiller<void>> redeemed_;
  kj::ForkedPromise<void> redeemedPromise_;
  capnp::TwoPartyVatNetwork network_;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc_;
  rpc::Node::Client remote_;
  std::map<JournalId, rpc::Subscription::Client> subscriptions_;
  std::vector<JournalId> shared_;  // journals held here that the peer may replicate, when last looked
  bool live_ = false;              // run() was called: live mode
  bool scanning_ = false;
  bool scanAgain_ = false;
  unsigned scanFailures_ = 0;
  kj::Maybe<kj::Exception> failure_;
  kj::TaskSet tasks_;
};

}  // namespace kith::node
