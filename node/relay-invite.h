// Joining a journal through a relay (specs/relay.md, "Joining"): neither the owner's node nor the
// friend's needs an inbound port. The invite code names the relay; both sides derive the invite's
// mailbox there from the invite's id. The friend puts a signed request in it; the owner's node
// (RelayInviteLink, run by `kith serve`) redeems it as Node.redeemInvite would, and puts back an
// answer with the journal's id and its current epoch key sealed to the friend. With that key the
// friend opens the journal's mailbox on the same relay and catches up.
//
// Threading: the loop thread only.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "node/relay-link.h"

namespace kith::node {

struct RelayInviteTarget {
  Key32 invite{};
  protocol::RelayAddress relay;
};

// The owner's side of one invite: keeps its mailbox open and answers every request in it.
class RelayInviteLink final : private kj::TaskSet::ErrorHandler {
public:
  RelayInviteLink(UvEventPort& port, Replicator& replicator, RelayInviteTarget target, Bytes token);
  ~RelayInviteLink() noexcept(false);
  KJ_DISALLOW_COPY(RelayInviteLink);
  void start();
  uint64_t answered() const { return answered_; }

private:
  struct Live;
  kj::Promise<void> runLoop(unsigned failures);
  kj::Promise<void> serve(std::shared_ptr<Live> live);
  // The answer to one request (redeeming the invite when it is open).
  protocol::RedeemAnswer answer(const protocol::RedeemRequest& request);
  void taskFailed(kj::Exception&& exception) override;

  UvEventPort& port_;
  Replicator& replicator_;
  RelayInviteTarget target_;
  Bytes token_;
  protocol::MailboxKeys keys_;
  uint64_t answered_ = 0;
  kj::TaskSet tasks_;
};

// Makes (or finds) an invite's mailbox on the relay: `kith invite --via-relay` calls it before it
// prints the code, so that the code works from the first moment.
kj::Promise<void> registerInviteMailbox(UvEventPort& port, const crypto::Identity& owner, const Key32& invite,
                                        const protocol::RelayAddress& relay, ByteView token);

// The friend's side: puts the request in the invite's mailbox and resolves with the owner's
// answer for this member once it is there (it may take until the owner's node next connects).
// `waiting` is called once when no answer was there at first.
kj::Promise<protocol::RedeemAnswer> redeemThroughRelay(UvEventPort& port, const crypto::Identity& member,
                                                       ByteView secret, const protocol::RelayAddress& relay,
                                                       std::function<void()> waiting);

// Every invite this owner's node answers through relays (`kith serve`): `targets` is asked again
// whenever the store changes (an invite made or used).
class RelayInviteLinks final : private ChangeListener {
public:
  using Targets = std::function<std::vector<RelayInviteTarget>()>;
  RelayInviteLinks(UvEventPort& port, Replicator& replicator, Targets targets, std::map<PublicKey, Bytes> tokens);
  ~RelayInviteLinks() noexcept(false);
  KJ_DISALLOW_COPY(RelayInviteLinks);
  void start();
  size_t size() const { return links_.size(); }

private:
  void storeChanged() override;
  void reconcile();

  UvEventPort& port_;
  Replicator& replicator_;
  Targets targets_;
  std::map<PublicKey, Bytes> tokens_;
  std::map<Key32, kj::Own<RelayInviteLink>> links_;
  bool started_ = false;
};

}  // namespace kith::node
