// The fork flood over RPC (issue 9): a member signs thousands of distinct entries at seqs it has
// already used and pushes them. Each is refused as a fork, and the store keeps fork evidence: at
// most one per (author, seq) and a small number per author, so that the store stays small. A
// non-member cannot push anything at all: its `journal()` is refused, and the node never hands it
// a sink (it would, on main, to any peer that claims the journal). An honest member still
// replicates meanwhile.

#include <catch2/catch.hpp>

#include "tests/node/hostile-peer.h"

namespace kith::node::test {
namespace {

using protocol::Role;

constexpr uint64_t SEQS_FORKED = 20;
constexpr size_t VARIANTS_PER_SEQ = 150;  // 3,000 forks in all
constexpr size_t FORK_PAD_BYTES = 1000;
constexpr size_t PUSH_ENTRIES = 500;  // under BATCH_ENTRIES_MAX and, at about 1.2 KB each, BATCH_BYTES_MAX
constexpr uintmax_t STORE_GROWTH_MAX = 2 * MIB;
constexpr size_t FORK_FLOOD_GROWTH_MAX = rssBound(64 * MIB);

// A push of packed entries [from, to) on `sink`; resolves with "" or the refusal.
kj::Promise<std::string> pushPacked(rpc::EntrySink::Client sink, const std::vector<Bytes>& packed, size_t from,
                                    size_t to) {
  auto req = sink.pushRequest();
  std::vector<Bytes> part(packed.begin() + static_cast<std::ptrdiff_t>(from),
                          packed.begin() + static_cast<std::ptrdiff_t>(to));
  fillEntries(req.initEntries(static_cast<unsigned>(part.size())), part);
  return settleVoid(req.send().ignoreResult());
}

}  // namespace

TEST_CASE("hostile: a fork flood leaves the store bounded and a non-member cannot push at all", "[node][hostile]") {
  UvIoContext io;
  TestNode s(io, "server");
  TestNode f(io, "forker");      // a co-author who forks its own chain
  TestNode h(io, "honest");      // a member who replicates meanwhile
  TestNode x(io, "non-member");  // a member of another journal here, who claims this one
  auto ring = s.keyring();
  JournalId j = store::createJournal(*s.store, ring, "forked");
  store::addMember(*s.store, ring, j, f.key(), Role::COAUTHOR);
  store::addMember(*s.store, ring, j, h.key(), Role::SUBSCRIBER);
  JournalId other = store::createJournal(*s.store, ring, "another");
  store::addMember(*s.store, ring, other, x.key(), Role::SUBSCRIBER);
  s.post(j, "from the owner");
  s.start();

  // F gets the journal, writes SEQS_FORKED entries and hands them over; H follows.
  followVia(f, j, s, s);
  f.start();
  REQUIRE(waitFor(io, [&] { return f.heads(j) == s.heads(j); }));
  f.postMany(j, SEQS_FORKED, "the forker's own");
  REQUIRE(waitFor(io, [&] { return s.headOf(j, f.key()) == SEQS_FORKED; }));
  f.stop();
  followVia(h, j, s, s);
  h.start();
  REQUIRE(waitFor(io, [&] { return h.heads(j) == s.heads(j); }));

  // Distinct signed entries at each of F's seqs, each with the right prev.
  auto info = f.store->journal(j);
  REQUIRE(info.has_value());
  auto epochKey = f.store->epochKey(j, info->epoch, f.storageKey.view());
  REQUIRE(epochKey.has_value());
  std::vector<Bytes> forks;
  for (uint64_t seq = 1; seq <= SEQS_FORKED; ++seq) {
    protocol::EntryDraft draft;
    draft.journal = j;
    draft.seq = seq;
    if (seq > 1) draft.prev = f.store->entry(j, f.key(), seq - 1)->id;
    draft.epoch = info->epoch;
    for (size_t k = 0; k < VARIANTS_PER_SEQ; ++k) {
      draft.timestampMs = nowMs() + static_cast<int64_t>(k);
      draft.body =
          protocol::Body{protocol::Kind::UPDATE,
                         "fork " + std::to_string(seq) + "/" + std::to_string(k) + std::string(FORK_PAD_BYTES, 'f'),
                         {}};
      forks.push_back(protocol::packEntry(protocol::signEntry(f.identity, draft, epochKey->view())));
    }
  }

  RssWatch rss;
  uintmax_t fileBefore = storeFileBytes(s);
  REQUIRE(s.store->forks(j).empty());

  // The non-member: its own push is refused, and it gets no sink to push into.
  auto log = std::make_shared<CallLog>();
  rpc::Node::Client claims = kj::heap<SpyNode>(nullptr, std::vector<JournalId>{j}, log);
  auto xPeer = waitWithin(io, dialRpcAs(io, x.identity, s.port, s.key(), false, claims));
  auto refused = waitWithin(io, pushPacked(xPeer->journal(j), forks, 0, PUSH_ENTRIES));
  CHECK_THAT(refused, Catch::Contains("not a member"));
  // The node asks which journals X holds at the start, and again when X says they changed; it runs
  // one scan at a time, so whatever it did with the first answer reached X before the second
  // question.
  waitWithin(io, xPeer->remote.journalsChangedRequest().send().ignoreResult());
  REQUIRE(waitFor(io, [&] { return log->journalsCalls >= 2; }));
  size_t sinksGiven = log->sinks->size();
  std::vector<std::string> sinkPushes;
  for (auto& sink : *log->sinks) sinkPushes.push_back(waitWithin(io, pushPacked(sink, forks, 0, PUSH_ENTRIES)));
  size_t forksFromNonMember = s.store->forks(j).size();
  report("fork flood", "the non-member was handed " + std::to_string(sinksGiven) + " sinks (journal() " +
                           std::to_string(log->journalCalls) + ", subscribe " + std::to_string(log->subscribeCalls) +
                           "); forks stored from it: " + std::to_string(forksFromNonMember));
  CHECK(sinksGiven == 0);
  CHECK(log->subscribeCalls == 0);
  CHECK(forksFromNonMember == 0);

  // The member's flood.
  auto fPeer = dialRpc(io, f, s.port, s.key());
  auto fJournal = fPeer->journal(j);
  for (size_t from = 0; from < forks.size(); from += PUSH_ENTRIES) {
    waitWithin(io, pushPacked(fJournal, forks, from, std::min(forks.size(), from + PUSH_ENTRIES)));
  }
  size_t forksStored = s.store->forks(j).size();
  uintmax_t fileAfter = storeFileBytes(s);
  uintmax_t fileGrowth = fileAfter > fileBefore ? fileAfter - fileBefore : 0;
  rss.sample();
  std::string figures = std::to_string(forks.size()) + " forks pushed at " + std::to_string(SEQS_FORKED) +
                        " seqs: " + std::to_string(forksStored) + " kept; the store's file grew by " + mib(fileGrowth) +
                        "; resident set " + mib(rss.base()) + " + " + mib(rss.peakGrowth());
  report("fork flood", figures);
  INFO(figures);
  CHECK(forksStored <= SEQS_FORKED);
  CHECK(fileGrowth <= STORE_GROWTH_MAX);
  CHECK(rss.peakGrowth() <= FORK_FLOOD_GROWTH_MAX);

  // The forker's real chain stands, and the honest member still replicates.
  CHECK(s.headOf(j, f.key()) == SEQS_FORKED);
  auto post = s.post(j, "after the fork flood");
  CHECK(waitFor(io, [&] { return h.headOf(j, s.key()) == post.seq; }));
  CHECK(h.heads(j) == s.heads(j));
}

}  // namespace kith::node::test
