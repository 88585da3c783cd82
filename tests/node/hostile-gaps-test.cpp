// Checks that mutation testing found unguarded (issue 9), each guarded on its own here:
// - the per-call membership check of a Journal capability (JournalServer::requireAccess): a member
//   removed while holding one has every later call refused;
// - the gate of Node.journal() for a non-member, apart from the per-call check behind it;
// - redeemInvite over RPC refusing a used and an expired invite while another invite is open
//   (so that strangers are let in at all), adding nobody.

#include <catch2/catch.hpp>

#include "tests/node/hostile-peer.h"

namespace kith::node::test {
namespace {

using protocol::Role;

template <typename Results>
kj::Promise<Settled<bool>> succeeded(kj::Promise<capnp::Response<Results>> call) {
  return settle(call.then([](capnp::Response<Results>&&) { return true; }));
}

}  // namespace

TEST_CASE("hostile: a member removed while holding a journal capability has every later call refused",
          "[node][hostile]") {
  UvIoContext io;
  TestNode s(io, "server");
  TestNode m(io, "member");
  auto ring = s.keyring();
  JournalId j = store::createJournal(*s.store, ring, "held");
  store::addMember(*s.store, ring, j, m.key(), Role::COAUTHOR);
  s.post(j, "before the removal");
  s.start();

  auto peer = dialRpc(io, m, s.port, s.key());
  auto journal = peer->journal(j);
  REQUIRE(waitWithin(io, succeeded(journal.headsRequest().send())).ok());
  // A subscription made before the removal, to see that it is not the only thing that stops.
  auto early = journal.subscribeRequest();
  early.initHave(0);
  early.setSink(kj::heap<SilentSink>());
  REQUIRE(waitWithin(io, succeeded(early.send())).ok());

  store::removeMember(*s.store, ring, j, m.key());

  auto heads = waitWithin(io, succeeded(journal.headsRequest().send()));
  auto fetch = journal.fetchRequest();
  fetch.setAuthor(kj::arrayPtr(s.key().data(), s.key().size()));
  fetch.setFromSeq(1);
  fetch.setLimit(10);
  auto fetched = waitWithin(io, succeeded(fetch.send()));
  auto push = journal.pushRequest();
  push.initEntries(0);
  auto pushed = waitWithin(io, succeeded(push.send()));
  auto subscribe = journal.subscribeRequest();
  subscribe.initHave(0);
  subscribe.setSink(kj::heap<SilentSink>());
  auto subscribed = waitWithin(io, succeeded(subscribe.send()));
  for (const auto& [name, outcome] : std::vector<std::pair<std::string, Settled<bool>>>{
           {"heads", heads}, {"fetch", fetched}, {"push", pushed}, {"subscribe", subscribed}}) {
    INFO(name << ": " << (outcome.ok() ? std::string("answered") : "refused: " + outcome.error));
    CHECK_FALSE(outcome.ok());
  }
  CHECK(s.sink->contains("refused a call: no longer a member"));
}

TEST_CASE("hostile: journal() is refused to a peer that is no member of that journal", "[node][hostile]") {
  UvIoContext io;
  TestNode s(io, "server");
  TestNode x(io, "other");  // a member of another journal here, so the handshake lets it in
  auto ring = s.keyring();
  JournalId j = store::createJournal(*s.store, ring, "private");
  JournalId other = store::createJournal(*s.store, ring, "shared");
  store::addMember(*s.store, ring, other, x.key(), Role::SUBSCRIBER);
  s.start();

  auto peer = dialRpc(io, x, s.port, s.key());
  // The call itself is refused, not only the calls on what it would return.
  auto req = peer->remote.journalRequest();
  req.setId(kj::arrayPtr(j.data(), j.size()));
  auto refused = waitWithin(io, succeeded(req.send()));
  INFO(refused.error);
  CHECK_FALSE(refused.ok());
  CHECK_THAT(refused.error, Catch::Contains("not a member of this journal"));
  CHECK(s.sink->contains("refused journal " + shortId(j)));
  // The journal it shares is given.
  auto allowed = peer->remote.journalRequest();
  allowed.setId(kj::arrayPtr(other.data(), other.size()));
  CHECK(waitWithin(io, succeeded(allowed.send())).ok());
}

TEST_CASE("hostile: redeemInvite over RPC refuses a used and an expired invite and adds nobody", "[node][hostile]") {
  UvIoContext io;
  TestNode s(io, "server");
  auto ring = s.keyring();
  JournalId j = store::createJournal(*s.store, ring, "invited");
  int64_t now = nowMs();
  Bytes open = putInvite(s, j, now + 3600 * 1000);  // keeps strangers let in at the handshake
  Bytes used = putInvite(s, j, now + 3600 * 1000);
  Bytes expired = putInvite(s, j, now - 1000);
  Bytes unknown(protocol::INVITE_SECRET_BYTES, 0x42);
  crypto::Identity earlier = crypto::Identity::generate();
  REQUIRE(s.store->redeemInvite(protocol::inviteId(used), earlier.publicKey(), now, ring).status ==
          store::InviteStatus::OPEN);
  s.start();
  auto headsBefore = s.heads(j);
  auto membersBefore = s.store->members(j).size();

  crypto::Identity stranger = crypto::Identity::generate();
  // One connection per attempt: a node may close a redeemer's connection after one answer.
  auto redeem = [&](const Bytes& secret) {
    auto peer = waitWithin(io, dialRpcAs(io, stranger, s.port, s.key(), false));
    auto req = peer->remote.redeemInviteRequest();
    req.setSecret(kj::arrayPtr(secret.data(), secret.size()));
    return waitWithin(io, succeeded(req.send()));
  };
  auto whenUsed = redeem(used);
  auto whenExpired = redeem(expired);
  auto whenUnknown = redeem(unknown);
  CHECK_FALSE(whenUsed.ok());
  CHECK_THAT(whenUsed.error, Catch::Contains(store::inviteStatusText(store::InviteStatus::USED)));
  CHECK_FALSE(whenExpired.ok());
  CHECK_THAT(whenExpired.error, Catch::Contains(store::inviteStatusText(store::InviteStatus::EXPIRED)));
  CHECK_FALSE(whenUnknown.ok());
  CHECK_THAT(whenUnknown.error, Catch::Contains(store::inviteStatusText(store::InviteStatus::UNKNOWN)));
  CHECK_FALSE(s.store->member(j, stranger.publicKey()).has_value());
  CHECK(s.store->members(j).size() == membersBefore);
  CHECK(s.heads(j) == headsBefore);
  CHECK(s.store->checkInvite(protocol::inviteId(open), nowMs()).first == store::InviteStatus::OPEN);

  // The open one is redeemed: the refusals above were the invites', not the connection's.
  auto whenOpen = redeem(open);
  INFO(whenOpen.error);
  CHECK(whenOpen.ok());
  auto added = s.store->member(j, stranger.publicKey());
  REQUIRE(added.has_value());
  CHECK(added->active);
}

}  // namespace kith::node::test
