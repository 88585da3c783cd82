// A household node's use of relays (specs/relay.md, "Members"): for every journal it is a current
// member of, and every relay the journal names (the owner's latest RELAYS entry), one RelayLink
// keeps a connection to the relay and the epoch's mailbox open: it pulls every envelope it has not
// seen, opens it and ingests the entry inside through the Replicator (verified as any peer's), and
// pushes every entry this node holds that the mailbox lacks, live, as the store changes.
//
// The owner's link also makes the mailbox (create, with the operator's token when one is
// configured) and, when the journal moves to a new epoch, rotates the old one away (closes it).
//
// Threading: the loop thread only.
// Caveats:
// - What the mailbox holds is learned by reading it: a link reads the whole mailbox once per epoch
//   and process, then goes on from its cursor (kept across reconnections, not across restarts).
// - Entries are ingested as from the journal's owner (Replicator::mayReplicate's peer): a relay is
//   no member, and what it hands over is judged entry by entry like anyone's.
// - Entries that arrive before what they depend on wait in a bounded buffer
//   (RELAY_PENDING_ENTRIES_MAX) and are tried again after each ingest that stored something.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node/relay-client.h"
#include "node/replicator.h"
#include "store/journal.h"

namespace kith::node {

// What `kith status` shows of one link.
struct RelayLinkState {
  JournalId journal{};
  protocol::RelayAddress relay;
  bool connected = false;  // the mailbox is open now
  int64_t lastSeenMs = 0;  // the last answer from the relay (0: never)
  std::string lastError;   // why the last connection ended or failed
  uint64_t received = 0;   // entries stored from the relay
  uint64_t sent = 0;       // envelopes the relay took from us
};

// What one catch-up through a relay did.
struct RelaySyncResult {
  uint64_t received = 0;
  uint64_t sent = 0;
};

class RelayLink final : private kj::TaskSet::ErrorHandler {
public:
  // `ingestAs`: the key entries are ingested as (the journal's owner). `token`: the operator's
  // access token for creating the mailbox (the owner's node only; may be empty). `changed` is
  // called when the link's state changes (for the status file).
  RelayLink(UvEventPort& port, Replicator& replicator, const JournalId& journal, protocol::RelayAddress relay,
            const PublicKey& ingestAs, Bytes token, std::function<void()> changed);
  ~RelayLink() noexcept(false);
  KJ_DISALLOW_COPY(RelayLink);

  // Live: connect and stay connected (reconnecting with backoff) until destroyed.
  void start();
  // One round: pull every envelope, push what the mailbox lacks, then close. With `until`, keep
  // pulling (waiting for envelopes) until it returns true or `waitMs` passed.
  kj::Promise<RelaySyncResult> syncOnce(std::function<bool()> until = {}, unsigned waitMs = 0);
  // Joining: the epoch and key to use while the store holds no key of the journal yet (the owner's
  // answer to a join through the relay carries them).
  void bootstrap(uint32_t epoch, crypto::SecretBuffer key) {
    bootstrapEpoch_ = epoch;
    bootstrapKey_ = std::move(key);
  }
  // The store changed: push what is new, or start over in the journal's new epoch.
  void storeChanged();
  const RelayLinkState& state() const { return state_; }
  const protocol::RelayAddress& relay() const { return state_.relay; }

private:
  struct Conn;
  kj::Promise<void> runLoop(unsigned failures);
  kj::Promise<void> syncRound(std::function<bool()> until, unsigned waitMs, unsigned epochMoves);
  kj::Promise<std::shared_ptr<Conn>> open();
  kj::Promise<void> ownerSetup(std::shared_ptr<Conn> conn);
  // One get's envelopes, opened (nothing ingested yet).
  struct Batch {
    std::vector<Bytes> packed;
    bool any = false;     // the relay answered envelopes (ours or not)
    bool closed = false;  // the mailbox was rotated away
  };
  kj::Promise<Batch> getBatch(std::shared_ptr<Conn> conn, bool wait);
  // Ingests a batch; throws when the mailbox is closed and empty. True when it held envelopes.
  kj::Promise<bool> take(std::shared_ptr<Conn> conn, Batch batch);
  kj::Promise<bool> pull(std::shared_ptr<Conn> conn, bool wait);
  kj::Promise<void> drain(std::shared_ptr<Conn> conn, kj::Promise<Batch> current);
  kj::Promise<void> pullUntilEmpty(std::shared_ptr<Conn> conn);
  kj::Promise<void> pullLive(std::shared_ptr<Conn> conn);
  kj::Promise<void> ingest(std::vector<Bytes> packed);
  // The entries beyond `have` that belong in the mailbox of `epoch` (`last`: how far they went).
  std::shared_ptr<std::vector<Bytes>> entriesFor(const VersionVector& have, uint32_t epoch, VersionVector& last);
  kj::Promise<void> pushAll(std::shared_ptr<Conn> conn);
  kj::Promise<void> pushEntries(std::shared_ptr<Conn> conn, std::shared_ptr<std::vector<Bytes>> entries, size_t from,
                                kj::Promise<void> inFlight);
  kj::Promise<void> pushTransition(std::shared_ptr<Conn> old, uint32_t newEpoch, bool ownerChainOnly);
  void schedulePush();
  void setConnected(bool connected, const std::string& error = "");
  std::string formatRelay() const;
  void taskFailed(kj::Exception&& exception) override;

  UvEventPort& port_;
  Replicator& replicator_;
  JournalId journal_;
  PublicKey ingestAs_;
  Bytes token_;
  std::function<void()> changed_;
  RelayLinkState state_;
  // What this link knows of the mailbox of epoch `epoch_`: read up to `cursor_`; its entries, by
  // author, up to `has_` (the highest seq seen or pushed).
  uint32_t epoch_ = 0;
  uint64_t cursor_ = 0;
  VersionVector has_;
  std::vector<Bytes> pending_;  // packed entries that could not be stored yet (see above)
  std::map<Bytes, unsigned> pendingTries_;
  std::shared_ptr<Conn> live_;  // the open connection in live mode
  bool pushing_ = false;
  bool pushAgain_ = false;
  kj::TimePoint refusedUntil_ = kj::origin<kj::TimePoint>();  // after "mailbox full": no pushes before this
  bool running_ = false;
  uint32_t transitionPushed_ = 0;  // the last epoch whose re-key this link handed to the old mailbox
  uint32_t bootstrapEpoch_ = 0;
  crypto::SecretBuffer bootstrapKey_;
  kj::Own<kj::Canceler> canceler_;
  kj::TaskSet tasks_;
};

// Every RelayLink of this node: listens to the store and keeps one link per journal this node is a
// current member of (and holds the current epoch key of) and relay that journal names.
class RelayLinks final : private ChangeListener {
public:
  // `tokens`: the operator tokens this household has, by relay key.
  RelayLinks(UvEventPort& port, Replicator& replicator, std::map<PublicKey, Bytes> tokens,
             std::function<void()> changed);
  ~RelayLinks() noexcept(false);
  KJ_DISALLOW_COPY(RelayLinks);

  void start();
  std::vector<RelayLinkState> states() const;
  size_t size() const { return links_.size(); }

private:
  void storeChanged() override;
  void reconcile();

  UvEventPort& port_;
  Replicator& replicator_;
  std::map<PublicKey, Bytes> tokens_;
  std::function<void()> changed_;
  std::map<JournalId, store::RelaysScan> scans_;
  std::map<std::pair<JournalId, PublicKey>, kj::Own<RelayLink>> links_;
  bool started_ = false;
};

}  // namespace kith::node
