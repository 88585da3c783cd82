// Told, not polled: a session asks its peer which journals they share when it starts, and again
// only when the set changes here (a grant: it also tells the peer) or when the peer tells it
// (Node.journalsChanged). A grant made while connected starts replicating without a reconnect; an
// idle session asks nothing; a peer that calls journalsChanged in a flood gets a bounded number of
// scans and the node keeps answering.

#include <catch2/catch.hpp>

#include "tests/node/hostile-peer.h"

namespace kith::node::test {
namespace {

using protocol::Role;

// Well under the 30 s safety poll of the store watch (STORE_SAFETY_POLL_MS), so that only being
// told can make it in time.
constexpr kj::Duration TOLD_DEADLINE = 10 * kj::SECONDS;
// An idle connection, watched for `journals` calls, in rounds with a live post each.
constexpr int IDLE_ROUNDS = 3;
constexpr kj::Duration IDLE_ROUND = 1 * kj::SECONDS;
// A hostile flood of journalsChanged calls, and the scans it may cost at most: one under way and
// one more after it per burst the node reads; far fewer than the calls.
constexpr unsigned FLOOD_CALLS = 10000;
constexpr unsigned FLOOD_SCANS_MAX = 20;
// Lets a scan the flood left pending finish before counting (never to wait for a result).
constexpr kj::Duration SETTLE = 500 * kj::MILLISECONDS;

}  // namespace

TEST_CASE("told: a member granted a journal while connected gets it without a reconnect", "[node][told]") {
  UvIoContext io;
  TestNode a(io, "owner");
  TestNode b(io, "member");
  auto ringA = a.keyring();
  JournalId shared = store::createJournal(*a.store, ringA, "already shared");
  store::addMember(*a.store, ringA, shared, b.key(), Role::SUBSCRIBER);
  JournalId later = store::createJournal(*a.store, ringA, "granted later");
  a.postMany(later, 20, "before the grant");
  // B holds the shared journal already, so that its session scans once, at its start, and nothing
  // but the grant can make it scan again.
  copyJournal(a, b, shared);
  a.start();
  // B reaches A through a proxy that counts connections; B follows both journals from A.
  TcpProxy proxy(io.getPort(), a.port);
  b.follow(shared, a.key());
  b.follow(later, a.key());
  b.trusted.push_back(a.key());
  b.dial(proxy.port(), a.key());
  b.start();
  // A post B receives: B's scan is done and its subscription is live.
  auto first = a.post(shared, "while connected");
  REQUIRE(waitFor(io, [&] { return b.headOf(shared, a.key()) == first.seq && a.node->sessionCount() == 1; }));
  CHECK_FALSE(b.holds(later));

  // `kith grant` while connected (a commit to A's store; the node learns of it from its watch).
  store::addMember(*a.store, ringA, later, b.key(), Role::SUBSCRIBER);
  CHECK(waitFor(
      io, [&] { return b.holds(later) && b.heads(later) == a.heads(later); }, TOLD_DEADLINE));
  // And it stays live: a post after the grant arrives too.
  auto post = a.post(later, "after the grant");
  CHECK(waitFor(
      io, [&] { return b.headOf(later, a.key()) == post.seq; }, TOLD_DEADLINE));
  CHECK(proxy.connections() == 1);
  CHECK(a.node->sessionCount() == 1);
  CHECK(digest(*b.store, later) == digest(*a.store, later));
}

TEST_CASE("told: an idle session asks which journals are shared once, however many posts flow", "[node][told]") {
  UvIoContext io;
  TestNode s(io, "owner (spied)");
  TestNode n(io, "member");
  auto ringS = s.keyring();
  JournalId j = store::createJournal(*s.store, ringS, "quiet");
  store::addMember(*s.store, ringS, j, n.key(), Role::SUBSCRIBER);
  s.post(j, "first");
  copyJournal(s, n, j);  // N holds the journal already: nothing new to share once connected

  // The owner's side is a spy that answers with the owner's own replicator and counts N's calls.
  auto log = std::make_shared<CallLog>();
  SpyListener spy(io, s.identity, 0, [&](const PublicKey& peer) -> capnp::Capability::Client {
    return kj::heap<SpyNode>(s.replicator->nodeFor(peer), std::vector<JournalId>{}, log);
  });
  n.follow(j, s.key());
  n.dial(spy.port(), s.key());
  n.start();
  REQUIRE(waitFor(io, [&] { return log->subscribeCalls == 1; }));
  CHECK(log->journalsCalls == 1);

  // Posts keep arriving (N's store changes each time) and time passes: nobody asks again.
  for (int round = 0; round < IDLE_ROUNDS; ++round) {
    auto post = s.post(j, "round " + std::to_string(round));
    s.replicator->notifyChanged();  // no node runs on the spy's side: tell its subscription
    REQUIRE(waitFor(io, [&] { return n.headOf(j, s.key()) == post.seq; }));
    runFor(io, IDLE_ROUND);
  }
  INFO("journals " << log->journalsCalls << ", journal " << log->journalCalls << ", subscribe " << log->subscribeCalls);
  CHECK(log->journalsCalls == 1);
  CHECK(log->journalCalls == 1);
  CHECK(log->subscribeCalls == 1);
}

TEST_CASE("hostile: a peer calling journalsChanged 10000 times costs a bounded number of scans", "[node][told]") {
  UvIoContext io;
  TestNode n(io, "node");
  TestNode h(io, "hostile member");
  TestNode m(io, "honest member");
  auto ringN = n.keyring();
  JournalId j = store::createJournal(*n.store, ringN, "flooded");
  store::addMember(*n.store, ringN, j, h.key(), Role::SUBSCRIBER);
  store::addMember(*n.store, ringN, j, m.key(), Role::SUBSCRIBER);
  n.start();
  m.follow(j, n.key());
  m.trusted.push_back(n.key());
  m.dial(n);
  m.start();
  REQUIRE(waitFor(io, [&] { return m.heads(j) == n.heads(j); }));

  // H serves a spy (claiming no journal) that counts how often N asks it `journals`.
  auto log = std::make_shared<CallLog>();
  auto peer = waitWithin(
      io, dialRpcAs(io, h.identity, n.port, n.key(), false, kj::heap<SpyNode>(nullptr, std::vector<JournalId>{}, log)));
  REQUIRE(waitFor(io, [&] { return log->journalsCalls == 1; }));

  auto calls = kj::heapArrayBuilder<kj::Promise<void>>(FLOOD_CALLS);
  for (unsigned i = 0; i < FLOOD_CALLS; ++i) {
    calls.add(peer->remote.journalsChangedRequest(capnp::MessageSize{4, 0}).send().ignoreResult());
  }
  waitWithin(io, kj::joinPromises(calls.finish()));
  // At least one scan follows the flood (it came after the first scan began).
  REQUIRE(waitFor(io, [&] { return log->journalsCalls >= 2; }));
  runFor(io, SETTLE);
  std::fprintf(stderr, "told: %u journalsChanged calls made the node ask journals %u times\n", FLOOD_CALLS,
               log->journalsCalls);
  CHECK(log->journalsCalls <= FLOOD_SCANS_MAX);

  // The node still answers H and still serves the honest member.
  auto listed = waitWithin(io, peer->remote.journalsRequest().send());
  CHECK(listed.getIds().size() == 1);
  auto post = n.post(j, "after the flood");
  CHECK(waitFor(
      io, [&] { return m.headOf(j, n.key()) == post.seq; }, TOLD_DEADLINE));
}

}  // namespace kith::node::test
