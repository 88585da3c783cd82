// Pipelined replication through real nodes on loopback: batches verified on the pool out of order
// still commit in the order they arrived, and `kith sync` keeps several fetches in flight, copes
// with answers cut short by their byte limit, and reports its progress to the end.

#include <numeric>

#include <catch2/catch.hpp>

#include "protocol/limits.h"
#include "tests/node/hostile-peer.h"

namespace kith::node::test {
namespace {

using protocol::Role;

// A text as long as an update may be, less room for its prefix: its entry is about 33 KiB, so that
// a fetch answer (BATCH_BYTES_MAX) holds about 30 of them.
constexpr size_t BIG_PAD_BYTES = protocol::TEXT_BYTES_MAX - 64;

// A push of `author`'s entries `fromSeq`..`fromSeq + count - 1` held by `node`.
kj::Promise<VersionVector> pushRange(rpc::Journal::Client& journal, const TestNode& node, const JournalId& j,
                                     const PublicKey& author, uint64_t fromSeq, size_t count) {
  auto packed = node.store->rangePacked(j, author, fromSeq, count, size_t{1} << 40);
  KJ_REQUIRE(packed.size() == count);
  auto req = journal.pushRequest();
  fillEntries(req.initEntries(static_cast<unsigned>(packed.size())), packed);
  return req.send().then([](capnp::Response<rpc::EntrySink::PushResults>&& r) { return readHeads(r.getHeads()); });
}

uint64_t headIn(const VersionVector& heads, const PublicKey& author) {
  auto it = heads.find(author);
  return it == heads.end() ? 0 : it->second;
}

}  // namespace

TEST_CASE("pipeline: a small batch verified before the big one it continues is still committed after it",
          "[node][pipeline]") {
  UvIoContext io;
  TestNode a(io, "owner");
  TestNode m(io, "co-author");
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "ordering");
  store::addMember(*a.store, ringA, j, m.key(), Role::COAUTHOR);
  copyJournal(a, m, j);
  // Each round: a full batch, then a small one that continues it, sent without waiting for the
  // first answer. The pool verifies the small one (one chunk) while the big one (eight) is still
  // under way; had it been committed first, its first seq would not follow the author's head and
  // the whole rest of the chain would be refused.
  constexpr size_t BIG = BATCH_ENTRIES_MAX;
  constexpr size_t SMALL = 10;
  constexpr size_t ROUNDS = 3;
  m.postMany(j, ROUNDS * (BIG + SMALL), "chain");
  a.start();

  // M talks to A over a raw connection and shares nothing with it (its spy answers `journals` with
  // no journal), so that only the test's pushes carry M's entries.
  auto log = std::make_shared<CallLog>();
  auto peer = waitWithin(
      io, dialRpcAs(io, m.identity, a.port, a.key(), false, kj::heap<SpyNode>(nullptr, std::vector<JournalId>{}, log)));
  auto journal = peer->journal(j);
  for (size_t round = 0; round < ROUNDS; ++round) {
    uint64_t from = 1 + round * (BIG + SMALL);
    auto big = pushRange(journal, m, j, m.key(), from, BIG);
    auto small = pushRange(journal, m, j, m.key(), from + BIG, SMALL);
    auto answers = waitWithin(io, kj::joinPromises(kj::arr(kj::mv(big), kj::mv(small))));
    INFO("round " << round);
    CHECK(headIn(answers[0], m.key()) >= from + BIG - 1);
    CHECK(headIn(answers[1], m.key()) == from + BIG + SMALL - 1);
    CHECK(a.headOf(j, m.key()) == from + BIG + SMALL - 1);
  }
  CHECK(a.headOf(j, m.key()) == ROUNDS * (BIG + SMALL));
  CHECK(a.replicator->ingestedCount() == ROUNDS * (BIG + SMALL));
  CHECK_FALSE(a.sink->contains("refused an entry"));
  CHECK(digest(*a.store, j) == digest(*m.store, j));
}

TEST_CASE("pipeline: sync of entries near the size limit gets every entry of two authors, with progress",
          "[node][pipeline]") {
  UvIoContext io;
  TestNode a(io, "owner");
  TestNode c(io, "co-author");
  TestNode s(io, "syncing");
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "big entries");
  store::addMember(*a.store, ringA, j, c.key(), Role::COAUTHOR);
  store::addMember(*a.store, ringA, j, s.key(), Role::SUBSCRIBER);
  copyJournal(a, c, j);
  // S holds the journal's start already (it knows the owner, whose chain it asks for first).
  copyJournal(a, s, j);
  const uint64_t ownerStart = a.headOf(j, a.key());
  // About 30 entries fit an answer: each author needs several answers, all of them short.
  constexpr size_t OWNER_POSTS = 110;
  constexpr size_t COAUTHOR_POSTS = 90;
  a.postMany(j, OWNER_POSTS, "owner", protocol::Kind::UPDATE, BIG_PAD_BYTES);
  c.postMany(j, COAUTHOR_POSTS, "co-author", protocol::Kind::UPDATE, BIG_PAD_BYTES);
  copyJournal(c, a, j);
  const uint64_t total = OWNER_POSTS + COAUTHOR_POSTS;
  const uint64_t ownerHead = a.headOf(j, a.key());
  REQUIRE(ownerHead == ownerStart + OWNER_POSTS);
  const size_t totalBytes = packedBytes(*a.store, j, a.key(), ownerStart + 1, ownerHead) +
                            packedBytes(*a.store, j, c.key(), 1, COAUTHOR_POSTS);
  const size_t answersNeeded = (totalBytes + BATCH_BYTES_MAX - 1) / BATCH_BYTES_MAX;
  REQUIRE(answersNeeded > SYNC_FETCHES_IN_FLIGHT);

  s.follow(j, a.key());
  UvListener listener(io.getPort(), "127.0.0.1", 0);
  std::vector<SyncProgress> calls;
  auto results = syncFrom(io, listener, a, s, [&](const SyncProgress& p) { calls.push_back(p); });

  REQUIRE(results.size() == 1);
  CHECK(results[0].journal == j);
  CHECK(results[0].expected == total);
  CHECK(results[0].received == total);
  CHECK(results[0].receivedBytes == totalBytes);
  CHECK(s.heads(j) == a.heads(j));
  CHECK(digest(*s.store, j) == digest(*a.store, j));
  // One report per answer stored (at least as many as the answers the byte limit needs), counting
  // up to the whole journal.
  INFO(calls.size() << " progress reports for " << answersNeeded << " answers' worth of bytes");
  CHECK(calls.size() >= answersNeeded);
  REQUIRE_FALSE(calls.empty());
  for (size_t i = 1; i < calls.size(); ++i) {
    CHECK(calls[i].received >= calls[i - 1].received);
    CHECK(calls[i].receivedBytes > calls[i - 1].receivedBytes);
  }
  CHECK(calls.back().received == total);
  CHECK(calls.back().receivedBytes == totalBytes);
  CHECK_FALSE(s.sink->contains("refused an entry"));
}

// A short answer is followed by a fetch of its gap; the fetches already in flight beyond it stay
// good. (Dropping and asking again sent about twice the journal.)
TEST_CASE("pipeline: sync of a long chain cut short by the byte limit sends each entry about once",
          "[node][pipeline][waste]") {
  UvIoContext io;
  TestNode a(io, "owner");
  TestNode s(io, "syncing");
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "long chain");
  store::addMember(*a.store, ringA, j, s.key(), Role::SUBSCRIBER);
  // Entries of about 4 KiB: an answer holds about 250 of them, fewer than the 512 asked for, and
  // the chain is longer than one fetch's range, so that fetches further along are in flight when
  // a short answer comes.
  constexpr size_t POSTS = 3 * BATCH_ENTRIES_MAX;
  constexpr size_t PAD_BYTES = 4000;
  a.postMany(j, POSTS, "owner", protocol::Kind::UPDATE, PAD_BYTES);
  const uint64_t head = a.headOf(j, a.key());
  const size_t journalBytes = packedBytes(*a.store, j, a.key(), 1, head);
  s.follow(j, a.key());
  // The syncing node reaches A through a proxy that counts what A sends.
  UvListener listener(io.getPort(), "127.0.0.1", 0);
  TcpProxy proxy(io.getPort(), listener.getPort());
  std::vector<SyncProgress> calls;
  auto results = syncFrom(
      io, listener, a, s, [&](const SyncProgress& p) { calls.push_back(p); }, proxy.port());
  REQUIRE(results.size() == 1);
  CHECK(results[0].received == head);
  CHECK(s.heads(j) == a.heads(j));
  uint64_t sent = proxy.bytes(false);
  std::fprintf(stderr, "pipelined sync: A sent %s for a journal of %s (%llu entries)\n", mib(sent).c_str(),
               mib(journalBytes).c_str(), static_cast<unsigned long long>(head));
  INFO("A sent " << sent << " bytes for " << journalBytes << " bytes of entries");
  // Transport framing and RPC add a little; answers fetched and then thrown away add a lot.
  CHECK(sent < journalBytes + journalBytes / 4);
}

}  // namespace kith::node::test
