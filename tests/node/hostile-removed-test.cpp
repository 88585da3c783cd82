// The removed member kept as a peer (issue 9): the owner removes R; M, a member who keeps R as a
// configured peer, must stop replicating the journal with R as soon as it learns of the removal:
// no subscribe (which would hand R a sink and M's version vector), no pull, no push. R does not
// know it was removed (nobody tells it), so it keeps offering the journal.
//
// R is first a real node; once the removal has reached M, R's place is taken by a spy with R's
// identity, R's store and R's answers (it forwards every call to R's own replicator), which
// records what M calls on it: first while M's node redials it, then while M runs a `kith sync`
// round against it.

#include <catch2/catch.hpp>

#include "tests/node/hostile-peer.h"

namespace kith::node::test {

using protocol::Role;

TEST_CASE("hostile: a member that keeps a removed member as a peer stops replicating the journal with it",
          "[node][hostile]") {
  UvIoContext io;
  auto& port = io.getPort();
  TestNode o(io, "owner");
  TestNode m(io, "member");
  TestNode r(io, "removed");
  auto ringO = o.keyring();
  JournalId j = store::createJournal(*o.store, ringO, "family");
  store::addMember(*o.store, ringO, j, m.key(), Role::COAUTHOR);
  store::addMember(*o.store, ringO, j, r.key(), Role::SUBSCRIBER);
  o.post(j, "before the removal");
  o.start();
  followVia(r, j, o, o);
  r.trusted.push_back(m.key());
  r.start();
  followVia(m, j, o, o);
  m.dial(r);
  m.start();
  REQUIRE(waitFor(io, [&] {
    return m.heads(j) == o.heads(j) && r.heads(j) == o.heads(j) && m.node->sessionCount() == 2 &&
           m.sink->contains("[peer " + shortId(r.key()) + "] journal " + shortId(j) + ": replicating");
  }));

  // The owner removes R and posts; M learns of both.
  auto removal = store::removeMember(*o.store, ringO, j, r.key());
  auto after = o.post(j, "after the removal");
  REQUIRE(waitFor(io, [&] { return m.headOf(j, o.key()) == after.seq; }));
  REQUIRE_FALSE(m.store->member(j, r.key())->active);

  // R goes away and its spy comes back on R's port; M's node redials it.
  r.stop();
  REQUIRE(waitFor(io, [&] { return m.node->sessionCount() == 1; }));
  auto log = std::make_shared<CallLog>();
  SpyListener spy(io, r.identity, r.port, [&](const PublicKey& peer) -> capnp::Capability::Client {
    return kj::heap<SpyNode>(r.replicator->nodeFor(peer), std::vector<JournalId>{}, log);
  });
  // M asks which journals R holds when the session starts, and again when told that they changed;
  // RPC keeps the order of calls on a connection and M runs one scan at a time, so whatever M did
  // with the first answer (subscribe) reached the spy before the second question.
  REQUIRE(waitFor(io, [&] { return log->journalsCalls >= 1 && spy.connections() == 1; }));
  waitWithin(io, spy.journalsChanged());
  REQUIRE(waitFor(io, [&] { return log->journalsCalls >= 2; }));
  INFO("live: journal " << log->journalCalls << ", subscribe " << log->subscribeCalls << " (have: owner at "
                        << (log->lastHave.count(o.key()) ? log->lastHave[o.key()] : 0) << "), push " << log->pushCalls
                        << ", fetch " << log->fetchCalls << ", heads " << log->headsCalls);
  report("removed member", "after M redialled R: journal() " + std::to_string(log->journalCalls) + ", subscribe " +
                               std::to_string(log->subscribeCalls) + ", push " + std::to_string(log->pushCalls));
  CHECK(log->subscribeCalls == 0);
  CHECK(log->journalTraffic() == 0);

  // A `kith sync` round from M to R: nothing of the journal moves either way.
  auto before = *log;
  auto results = waitWithin(
      io,
      connect(port, "127.0.0.1", spy.port())
          .then([&](kj::Own<UvStream> s) { return secureInitiate(kj::mv(s), m.identity, r.key(), port.getTimer()); })
          .then([&](SecureConnection conn) {
            auto session = kj::heap<PeerSession>(*m.replicator, kj::mv(conn), true, port.getTimer());
            auto promise = session->sync([](const SyncProgress&) {});
            return promise.attach(kj::mv(session));
          }));
  uint64_t sentInSync = 0;
  for (const auto& p : results) {
    if (p.journal == j) sentInSync += p.sent;
  }
  report("removed member", "sync from M to R: push " + std::to_string(log->pushCalls - before.pushCalls) + " (" +
                               std::to_string(log->pushedEntries - before.pushedEntries) + " entries), fetch " +
                               std::to_string(log->fetchCalls - before.fetchCalls) + "; R's head of the owner " +
                               std::to_string(r.headOf(j, o.key())) + ", the post after the removal is seq " +
                               std::to_string(after.seq));
  CHECK(sentInSync == 0);
  CHECK(log->pushCalls == before.pushCalls);
  CHECK(log->fetchCalls == before.fetchCalls);
  CHECK(log->journalTraffic() == before.journalTraffic());

  // R's store never got the removal nor what followed it.
  CHECK(r.headOf(j, o.key()) < removal.seq);
  CHECK(r.headOf(j, o.key()) < after.seq);
  CHECK_FALSE(r.store->entry(j, o.key(), after.seq).has_value());
}

}  // namespace kith::node::test
