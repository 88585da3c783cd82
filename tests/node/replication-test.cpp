// Replication between full nodes in one process, on one event loop: each node has its own store,
// identity, replicator and Node listening on 127.0.0.1. Covers following a journal, live updates,
// refusing strangers and removed members, resuming without resending, any member serving any
// member's entries, the `kith sync` path, and a subscription's flow control.

#include <algorithm>

#include <catch2/catch.hpp>

#include "tests/node/node-fixture.h"

namespace kith::node::test {
namespace {

using protocol::Kind;
using protocol::Role;

// The texts of the readable bodies in `node`'s copy of `journal`, by author.
std::vector<std::string> readableTexts(const TestNode& node, const JournalId& journal, const PublicKey& author) {
  std::vector<std::string> out;
  for (const auto& r : store::readJournal(*node.store, node.keyring(), journal)) {
    if (r.entry.author == author && r.body) out.push_back(r.body->text);
  }
  return out;
}

bool contains(const std::vector<std::string>& texts, const std::string& text) {
  return std::find(texts.begin(), texts.end(), text) != texts.end();
}

// A node following `journal`, owned by `owner`, dialling `via`.
void follows(TestNode& node, const JournalId& journal, const TestNode& owner, const TestNode& via) {
  node.follow(journal, via.key());
  node.trusted.push_back(owner.key());
  node.dial(via);
}

// An EntrySink that counts pushes and answers each only when the test says so.
struct StubState {
  unsigned pushes = 0;
  unsigned answered = 0;
  unsigned maxOutstanding = 0;
  uint64_t entries = 0;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> pending;
  size_t released = 0;  // pending[0, released) were answered

  void releaseAll() {
    while (released < pending.size()) pending[released++]->fulfill();
  }
};

class StubSink final : public rpc::EntrySink::Server {
public:
  explicit StubSink(std::shared_ptr<StubState> state) : state_(kj::mv(state)) {}

  kj::Promise<void> push(PushContext context) override {
    ++state_->pushes;
    state_->entries += context.getParams().getEntries().size();
    state_->maxOutstanding = std::max(state_->maxOutstanding, state_->pushes - state_->answered);
    auto paf = kj::newPromiseAndFulfiller<void>();
    state_->pending.push_back(kj::mv(paf.fulfiller));
    return paf.promise.then([state = state_]() { ++state->answered; });
  }

private:
  std::shared_ptr<StubState> state_;
};

}  // namespace

TEST_CASE("replication: a granted follower gets the journal and live posts - a stranger is refused",
          "[node][replication]") {
  UvIoContext io;
  TestNode a(io, "a");
  TestNode b(io, "b");
  TestNode c(io, "c");
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "Mum's journal");
  store::addMember(*a.store, ringA, j, b.key(), Role::SUBSCRIBER);
  for (int i = 0; i < 5; ++i) a.post(j, "update " + std::to_string(i));
  a.start();
  follows(b, j, a, a);
  b.start();
  follows(c, j, a, a);  // C was never granted
  c.start();

  REQUIRE(waitFor(io, [&] { return b.holds(j) && b.heads(j) == a.heads(j); }));
  CHECK(store::journalTitle(*b.store, b.keyring(), j) == std::optional<std::string>("Mum's journal"));
  auto texts = readableTexts(b, j, a.key());
  for (int i = 0; i < 5; ++i) CHECK(contains(texts, "update " + std::to_string(i)));

  // A post while connected reaches B without a reconnect.
  auto live = a.post(j, "she is home on Thursday");
  REQUIRE(waitFor(io, [&] { return b.headOf(j, a.key()) == live.seq; }));
  CHECK(contains(readableTexts(b, j, a.key()), "she is home on Thursday"));

  // C is refused at the handshake, with the reason on both sides, and never gets the journal.
  REQUIRE(waitFor(io, [&] {
    return c.sink->contains("refused the connection: you are not a member") && a.sink->contains("refused peer");
  }));
  CHECK_FALSE(c.holds(j));
  CHECK(c.store->journals().empty());
  CHECK(a.node->sessionCount() == 1);
  CHECK(c.node->sessionCount() == 0);
}

TEST_CASE("replication: a follower that reconnects gets only what it missed", "[node][replication]") {
  UvIoContext io;
  TestNode a(io, "a");
  TestNode b(io, "b");
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "resume");
  store::addMember(*a.store, ringA, j, b.key(), Role::SUBSCRIBER);
  a.postMany(j, 300, "before");
  a.start();
  // B reaches A through a proxy that counts the bytes A sends.
  TcpProxy proxy(io.getPort(), a.port);
  b.follow(j, a.key());
  b.trusted.push_back(a.key());
  b.dial(proxy.port(), a.key());
  b.start();
  REQUIRE(waitFor(io, [&] { return b.heads(j) == a.heads(j); }));
  uint64_t seqBefore = a.headOf(j, a.key());
  REQUIRE(seqBefore == 302);
  CHECK(b.replicator->ingestedCount() == 302);

  b.stop();
  REQUIRE(waitFor(io, [&] { return a.node->sessionCount() == 0 && proxy.openConnections() == 0; }));
  uint64_t bytesBefore = proxy.bytes(false);
  uint64_t ingestedBefore = b.replicator->ingestedCount();
  a.postMany(j, 300, "while B was away");

  b.start();
  REQUIRE(waitFor(io, [&] { return b.heads(j) == a.heads(j); }));
  REQUIRE(proxy.connections() == 2);
  // B stored exactly the 300 new entries...
  CHECK(b.replicator->ingestedCount() - ingestedBefore == 300);
  CHECK(contains(readableTexts(b, j, a.key()), "while B was away #299 " + std::string(180, 'x')));
  // ...and A sent them once, not what B had: a resend of the first 300 would double the bytes.
  size_t newBytes = packedBytes(*a.store, j, a.key(), seqBefore + 1, seqBefore + 300);
  size_t oldBytes = packedBytes(*a.store, j, a.key(), 1, seqBefore);
  uint64_t sent = proxy.bytes(false) - bytesBefore;
  INFO("A sent " << sent << " bytes on reconnect; new entries " << newBytes << " bytes, old " << oldBytes);
  CHECK(sent >= newBytes);
  CHECK(sent < newBytes + oldBytes / 2);
}

TEST_CASE("replication: every member's entries reach everyone, and any member serves them", "[node][replication]") {
  UvIoContext io;
  TestNode a(io, "a");  // owner
  TestNode b(io, "b");  // co-author
  TestNode c(io, "c");  // subscriber
  TestNode d(io, "d");  // subscriber who joins while the owner is offline
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "family");
  store::addMember(*a.store, ringA, j, b.key(), Role::COAUTHOR);
  store::addMember(*a.store, ringA, j, c.key(), Role::SUBSCRIBER);
  store::addMember(*a.store, ringA, j, d.key(), Role::SUBSCRIBER);
  a.post(j, "from the owner");
  a.start();
  follows(b, j, a, a);
  b.start();
  follows(c, j, a, a);
  c.start();
  REQUIRE(waitFor(io, [&] { return b.heads(j) == a.heads(j) && c.heads(j) == a.heads(j); }));

  auto update = b.post(j, "meals on Tuesday, from the co-author");
  auto comment = c.post(j, "thinking of you", Kind::COMMENT, {update.id});
  // B and C are connected only to A: A takes each one's entry and passes it on.
  REQUIRE(waitFor(io, [&] {
    return a.headOf(j, b.key()) == update.seq && a.headOf(j, c.key()) == comment.seq && b.heads(j) == a.heads(j) &&
           c.heads(j) == a.heads(j);
  }));
  CHECK(contains(readableTexts(c, j, b.key()), "meals on Tuesday, from the co-author"));
  CHECK(contains(readableTexts(b, j, c.key()), "thinking of you"));
  CHECK(contains(readableTexts(a, j, c.key()), "thinking of you"));

  // The owner goes offline; D knows only C, and gets everything from C.
  a.stop();
  follows(d, j, a, c);
  d.start();
  REQUIRE(waitFor(io, [&] { return d.holds(j) && d.heads(j) == c.heads(j); }));
  CHECK(digest(*d.store, j) == digest(*c.store, j));
  CHECK(contains(readableTexts(d, j, a.key()), "from the owner"));
  CHECK(contains(readableTexts(d, j, b.key()), "meals on Tuesday, from the co-author"));
  CHECK(contains(readableTexts(d, j, c.key()), "thinking of you"));
  CHECK_FALSE(a.running());
}

TEST_CASE("replication: a removed member is refused and cannot read what follows", "[node][replication]") {
  UvIoContext io;
  TestNode a(io, "a");
  TestNode b(io, "b");
  TestNode c(io, "c");  // removed from j1, still a member of j2
  auto ringA = a.keyring();
  JournalId j1 = store::createJournal(*a.store, ringA, "one");
  store::addMember(*a.store, ringA, j1, b.key(), Role::SUBSCRIBER);
  store::addMember(*a.store, ringA, j1, c.key(), Role::SUBSCRIBER);
  a.post(j1, "before the removal");
  JournalId j2 = store::createJournal(*a.store, ringA, "two");
  store::addMember(*a.store, ringA, j2, c.key(), Role::SUBSCRIBER);
  a.start();
  follows(b, j1, a, a);
  b.start();
  follows(c, j1, a, a);
  c.start();
  REQUIRE(waitFor(io, [&] { return b.heads(j1) == a.heads(j1) && c.heads(j1) == a.heads(j1); }));
  CHECK(contains(readableTexts(c, j1, a.key()), "before the removal"));
  uint64_t cHeadAtRemoval = c.headOf(j1, a.key());

  // Removed while connected: live updates to C stop at once.
  auto removal = store::removeMember(*a.store, ringA, j1, c.key());
  auto after1 = a.post(j1, "posted after the removal");
  REQUIRE(waitFor(io, [&] { return b.headOf(j1, a.key()) == after1.seq; }));
  auto after2 = a.post(j1, "posted after the removal, again");
  REQUIRE(waitFor(io, [&] { return b.headOf(j1, a.key()) == after2.seq; }));
  CHECK(contains(readableTexts(b, j1, a.key()), "posted after the removal"));
  CHECK(c.headOf(j1, a.key()) < after1.seq);
  CHECK(a.sink->contains("live updates stopped: no longer a member"));

  // Reconnecting, C is still let in (it is a member of j2) but refused j1's capability.
  c.stop();
  REQUIRE(waitFor(io, [&] { return a.node->sessionCount() == 1; }));
  {
    auto peer = dialRpc(io, c, a.port, a.key());
    auto listed = waitWithin(io, peer->remote.journalsRequest().send());
    REQUIRE(listed.getIds().size() == 1);
    auto listedId = listed.getIds()[0];
    CHECK((listedId.size() == 32 && std::equal(listedId.begin(), listedId.end(), j2.begin())));
    auto refusedHeads = waitWithin(io, settle(peer->journal(j1).headsRequest().send().then(
                                           [](capnp::Response<rpc::Journal::HeadsResults>&&) { return true; })));
    CHECK_FALSE(refusedHeads.ok());
    CHECK_THAT(refusedHeads.error, Catch::Contains("not a member of this journal"));
    auto fetch = peer->journal(j1).fetchRequest();
    fetch.setAuthor(kj::arrayPtr(a.key().data(), 32));
    fetch.setFromSeq(1);
    fetch.setLimit(10);
    auto refusedFetch =
        waitWithin(io, settle(fetch.send().then([](capnp::Response<rpc::Journal::FetchResults>&&) { return true; })));
    CHECK_FALSE(refusedFetch.ok());
    CHECK_THAT(refusedFetch.error, Catch::Contains("not a member of this journal"));
    auto allowed =
        waitWithin(io, settle(peer->journal(j2).headsRequest().send().then(
                           [](capnp::Response<rpc::Journal::HeadsResults>&& r) { return r.getHeads().size(); })));
    CHECK(allowed.ok());
    CHECK(a.sink->contains("refused journal"));
  }
  c.start();
  auto after3 = a.post(j1, "posted while C reconnected");
  REQUIRE(waitFor(io, [&] { return b.headOf(j1, a.key()) == after3.seq && c.node->sessionCount() == 1; }));
  CHECK(c.headOf(j1, a.key()) <= cHeadAtRemoval);

  // Handed the ciphertext anyway, C holds no key that opens it.
  auto info = a.store->journal(j1);
  REQUIRE(info->epoch == 1);
  unsigned keysHeld = 0;
  for (uint32_t epoch = 0; epoch <= info->epoch; ++epoch) {
    auto key = c.store->epochKey(j1, epoch, c.storageKey.view());
    if (!key) continue;
    ++keysHeld;
    for (const auto& e : {after1, after2, after3}) CHECK_FALSE(protocol::openBody(e, key->view()).has_value());
  }
  CHECK(keysHeld == 1);  // epoch 0 only
  auto ringC = c.keyring();
  c.store->appendBatch({removal, after1, after2, after3}, &ringC);
  for (const auto& r : store::readJournal(*c.store, ringC, j1)) {
    if (r.entry.epoch >= 1) CHECK_FALSE(r.body.has_value());
  }
}

TEST_CASE("replication: sync pulls and pushes both ways in bounded batches, with progress", "[node][replication]") {
  UvIoContext io;
  auto& port = io.getPort();
  TestNode a(io, "a");
  TestNode b(io, "b");  // co-author
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "sync");
  store::addMember(*a.store, ringA, j, b.key(), Role::COAUTHOR);
  a.postMany(j, BATCH_ENTRIES_MAX + 100, "from the owner");
  b.follow(j, a.key());
  UvListener listener(port, "127.0.0.1", 0);

  // One `kith sync` round: B dials A's listener (A serves, B syncs).
  auto syncOnce = [&](std::vector<SyncProgress>& calls) {
    kj::Maybe<kj::Own<PeerSession>> server;
    auto serving =
        listener.accept()
            .then([&](kj::Own<UvStream> s) {
              return secureRespond(
                  kj::mv(s), a.identity, [](const crypto::PublicKey&) { return std::string(); }, port.getTimer());
            })
            .then([&](SecureConnection conn) {
              server = kj::heap<PeerSession>(*a.replicator, kj::mv(conn), false, port.getTimer());
            })
            .eagerlyEvaluate(nullptr);
    auto results = waitWithin(
        io,
        connect(port, "127.0.0.1", listener.getPort())
            .then([&](kj::Own<UvStream> s) { return secureInitiate(kj::mv(s), b.identity, a.key(), port.getTimer()); })
            .then([&](SecureConnection conn) {
              auto session = kj::heap<PeerSession>(*b.replicator, kj::mv(conn), true, port.getTimer());
              auto promise = session->sync([&](const SyncProgress& p) { calls.push_back(p); });
              return promise.attach(kj::mv(session));
            }));
    server = nullptr;
    return results;
  };

  // First sync: B has nothing; it pulls everything, in more than one batch.
  std::vector<SyncProgress> calls;
  auto first = syncOnce(calls);
  REQUIRE(first.size() == 1);
  CHECK(first[0].journal == j);
  CHECK(first[0].expected == BATCH_ENTRIES_MAX + 102);
  CHECK(first[0].received == BATCH_ENTRIES_MAX + 102);
  CHECK(first[0].sent == 0);
  CHECK(calls.size() >= 2);
  CHECK(calls.back().received == BATCH_ENTRIES_MAX + 102);
  CHECK(b.heads(j) == a.heads(j));

  // Both write while apart; the next sync moves both ways.
  b.postMany(j, BATCH_ENTRIES_MAX + 50, "from the co-author");
  a.postMany(j, 5, "more from the owner");
  calls.clear();
  auto second = syncOnce(calls);
  REQUIRE(second.size() == 1);
  CHECK(second[0].received == 5);
  CHECK(second[0].expected == 5);
  CHECK(second[0].sent == BATCH_ENTRIES_MAX + 50);
  CHECK(calls.size() >= 3);  // one pull batch, two push batches
  CHECK(b.heads(j) == a.heads(j));
  CHECK(digest(*a.store, j) == digest(*b.store, j));
  CHECK(contains(readableTexts(a, j, b.key()), "from the co-author #0 " + std::string(180, 'x')));

  // Nothing left: a third sync moves nothing.
  calls.clear();
  auto third = syncOnce(calls);
  REQUIRE(third.size() == 1);
  CHECK(third[0].received == 0);
  CHECK(third[0].sent == 0);
}

TEST_CASE("replication: a subscription keeps at most PUSHES_IN_FLIGHT_MAX pushes outstanding", "[node][replication]") {
  UvIoContext io;
  TestNode a(io, "a");
  TestNode m(io, "m");  // a member whose sink does not answer
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "flow");
  store::addMember(*a.store, ringA, j, m.key(), Role::SUBSCRIBER);
  a.start();

  auto state = std::make_shared<StubState>();
  auto peer = dialRpc(io, m, a.port, a.key());
  auto journal = peer->journal(j);
  // Two round trips on the connection: every push A sent before has been delivered to the sink.
  auto barrier = [&] {
    for (int i = 0; i < 2; ++i) waitWithin(io, journal.headsRequest().send().ignoreResult());
  };
  auto req = journal.subscribeRequest();
  req.initHave(0);
  req.setSink(kj::heap<StubSink>(state));
  auto subscription = req.send().getSubscription();
  REQUIRE(waitFor(io, [&] { return state->pushes == 1; }));
  CHECK(state->entries == 2);  // the genesis and the membership

  constexpr size_t ROUNDS = 10;
  constexpr size_t PER_ROUND = 100;
  for (size_t round = 0; round < ROUNDS; ++round) {
    a.postMany(j, PER_ROUND, "round " + std::to_string(round));
    a.replicator->notifyChanged();
    barrier();
  }
  CHECK(state->pushes == PUSHES_IN_FLIGHT_MAX);
  CHECK(state->answered == 0);
  CHECK(state->maxOutstanding == PUSHES_IN_FLIGHT_MAX);

  // One answer lets exactly one more push through.
  state->pending[0]->fulfill();
  state->released = 1;
  REQUIRE(waitFor(io, [&] { return state->pushes == PUSHES_IN_FLIGHT_MAX + 1; }));
  barrier();
  CHECK(state->pushes == PUSHES_IN_FLIGHT_MAX + 1);

  // Answering everything as it comes delivers every entry exactly once, never over the bound.
  const uint64_t total = 2 + ROUNDS * PER_ROUND;
  REQUIRE(waitFor(io, [&] {
    state->releaseAll();
    return state->entries >= total;
  }));
  barrier();
  CHECK(state->entries == total);
  CHECK(state->maxOutstanding == PUSHES_IN_FLIGHT_MAX);
}

}  // namespace kith::node::test
