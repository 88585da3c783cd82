// One authenticated connection to a peer, running Cap'n Proto two-party RPC over the secure
// transport. Both ends serve their Node (Replicator::nodeFor) and use the other's.
//
// Live mode (`kith serve`): subscribe to every journal both sides replicate, and ask again every
// JOURNALS_RESCAN_MS which journals the peer shares (a grant or a follow made while connected).
// Sync mode (`kith sync`, `kith follow`): pull what the peer has and we lack (ranged fetch in
// bounded batches), push what we have and the peer lacks, then finish.
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
  uint64_t received = 0;  // entries stored from this peer so far in this journal
  uint64_t expected = 0;  // entries the peer had that we lacked, when we asked
  uint64_t sent = 0;      // entries the peer accepted from us
};

class PeerSession final : private kj::TaskSet::ErrorHandler {
public:
  PeerSession(Replicator& replicator, SecureConnection connection, bool initiator, kj::Timer& timer);
  ~PeerSession() noexcept(false);
  KJ_DISALLOW_COPY(PeerSession);

  const crypto::PublicKey& peer() const { return peer_; }
  bool initiator() const { return initiator_; }

  // Live replication until the connection ends; rejects with the reason it ended.
  kj::Promise<void> run();
  // One round of catch-up both ways for every shared journal; `progress` is called after each
  // batch. Resolves with the per-journal totals.
  kj::Promise<std::vector<SyncProgress>> sync(std::function<void(const SyncProgress&)> progress);
  // Redeems an invite's secret; resolves with the journal and the role granted.
  kj::Promise<std::pair<JournalId, protocol::Role>> redeem(const Bytes& secret);

private:
  kj::Promise<void> scanJournals();
  kj::Promise<void> rescanLoop(unsigned failures);
  void subscribe(const JournalId& journal);
  kj::Promise<void> pull(rpc::Journal::Client journal, std::shared_ptr<SyncProgress> progress,
                         std::shared_ptr<std::vector<protocol::Want>> wants, size_t index, bool progressed,
                         std::function<void(const SyncProgress&)> onProgress);
  kj::Promise<void> pushAll(rpc::Journal::Client journal, std::shared_ptr<SyncProgress> progress, VersionVector remote,
                            std::function<void(const SyncProgress&)> onProgress);
  void taskFailed(kj::Exception&& exception) override;

  Replicator& replicator_;
  SecureConnection connection_;
  crypto::PublicKey peer_;
  bool initiator_;
  kj::Timer& timer_;
  capnp::TwoPartyVatNetwork network_;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc_;
  rpc::Node::Client remote_;
  std::map<JournalId, rpc::Subscription::Client> subscriptions_;
  kj::Maybe<kj::Exception> failure_;
  kj::TaskSet tasks_;
};

}  // namespace kith::node
