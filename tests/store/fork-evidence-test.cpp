// Fork evidence (specs/entry.md, "Fork evidence"): a second signed entry at a stored (author, seq)
// is kept only when its author could have written it there, at most once per (author, seq) and
// FORKS_PER_AUTHOR_MAX times per author; the rest is refused, and appendBatch's outcome says
// whether it was kept, so that a node counts what it did not keep.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

// The size of a compacted copy of the store: what it holds, without free pages.
size_t compactBytes(const Store& store, const TempDir& dir, const std::string& name) {
  std::string path = dir.path() + "/" + name;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  store.copyCompactTo(fd);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  ::close(fd);
  return static_cast<size_t>(st.st_size);
}

// A fork of `chain[seq - 1]`: the same place, another text.
Entry forkAt(const Person& author, const JournalId& j, const std::vector<Entry>& chain, uint64_t seq, uint32_t epoch,
             const std::string& text, ByteView key) {
  EntryId prev = seq > 1 ? chain[seq - 2].id : EntryId{};
  return makePost(author, j, seq, prev, chain[seq - 1].timestampMs, epoch, text, key);
}

}  // namespace

TEST_CASE(
    "fork evidence: a member signing 10000 forks leaves at most FORKS_PER_AUTHOR_MAX - one per seq - and the "
    "store stays small",
    "[store][forks]") {
  TempDir dir, copies;
  Person owner("owner"), coauthor("coauthor");
  auto store = Store::open(dir.path());
  Keyring kr = owner.keyring();
  JournalId j = createJournal(*store, kr, "forks");
  addMember(*store, kr, j, coauthor.key(), Role::COAUTHOR);
  Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));
  constexpr uint64_t CHAIN = 40;
  std::vector<Entry> chain = chainOf(coauthor, j, Head{}, CHAIN, 100, key);
  for (const auto& out : store->appendBatch(chain, &kr)) REQUIRE(out.status == AppendStatus::ADDED);
  size_t before = compactBytes(*store, copies, "before");

  constexpr size_t FORKS = 10000;
  uint64_t seed = testSeed("fork flood");
  std::mt19937_64 rng(seed);
  size_t kept = 0, refused = 0;
  std::vector<Entry> batch;
  auto flush = [&] {
    for (const auto& out : store->appendBatch(batch, &kr)) {
      REQUIRE(out.status == AppendStatus::REJECTED);
      REQUIRE(out.reason == Rejection::FORK);
      (out.evidenceKept ? kept : refused)++;
    }
    batch.clear();
  };
  for (size_t i = 0; i < FORKS; ++i) {
    uint64_t seq = 1 + rng() % CHAIN;
    batch.push_back(forkAt(coauthor, j, chain, seq, 0, "fork " + std::to_string(i) + std::string(200, 'f'), key));
    if (batch.size() == 1000) flush();
  }
  flush();
  size_t after = compactBytes(*store, copies, "after");
  std::fprintf(stderr, "fork flood: %zu forks, %zu kept, store %zu -> %zu bytes (compacted)\n", FORKS, kept, before,
               after);

  CHECK(kept == FORKS_PER_AUTHOR_MAX);
  CHECK(refused == FORKS - FORKS_PER_AUTHOR_MAX);
  auto evidence = store->forks(j);
  REQUIRE(evidence.size() == FORKS_PER_AUTHOR_MAX);
  std::set<uint64_t> seqs;
  for (const Bytes& packed : evidence) seqs.insert(protocol::decodePackedEntry(packed).seq);
  CHECK(seqs.size() == evidence.size());  // one per (author, seq)
  // Each fork is about 500 bytes: unbounded, 10,000 of them would add about 5 MB.
  CHECK(after - before < 64 * 1024);
  CHECK(store->versionVector(j).at(coauthor.key()) == CHAIN);
  CHECK(store->checkIntegrity().problems.empty());
}

TEST_CASE("fork evidence: a second entry its author could not have written at that place keeps nothing",
          "[store][forks]") {
  TempDir dir;
  Person owner("owner"), coauthor("coauthor"), late("late"), stranger("stranger");
  auto store = Store::open(dir.path());
  Keyring kr = owner.keyring();
  JournalId j = createJournal(*store, kr, "forks");
  addMember(*store, kr, j, coauthor.key(), Role::COAUTHOR);
  Bytes key0 = copyOf(*store->epochKey(j, 0, kr.storageKey));
  std::vector<Entry> chain = chainOf(coauthor, j, Head{}, 3, 50, key0);
  for (const auto& out : store->appendBatch(chain, &kr)) REQUIRE(out.status == AppendStatus::ADDED);
  // A member added in epoch 1 (after a removal) whose first entry is in epoch 1.
  Household spare;
  addMember(*store, kr, j, spare.key(), Role::SUBSCRIBER);
  removeMember(*store, kr, j, spare.key());
  addMember(*store, kr, j, late.key(), Role::COAUTHOR);
  Bytes key1 = copyOf(*store->epochKey(j, 1, kr.storageKey));
  Entry lateFirst = makePost(late, j, 1, {}, 1'700'000'000'000, 1, "late 1", key1);
  REQUIRE(store->append(lateFirst, &kr) == AppendStatus::ADDED);

  auto refusedAndNothingKept = [&](const Entry& e, Rejection want) {
    size_t change = store->changeCounter();
    auto out = store->appendBatch({e}, &kr);
    INFO(out[0].message);
    CHECK(out[0].status == AppendStatus::REJECTED);
    CHECK(out[0].reason == want);
    CHECK_FALSE(out[0].evidenceKept);
    CHECK(store->changeCounter() == change);
  };
  // A stranger has no chain here: its entries never reach the fork check, and store nothing.
  for (int i = 0; i < 3; ++i) {
    refusedAndNothingKept(makePost(stranger, j, 1, {}, 1, 0, "stranger " + std::to_string(i), key0),
                          Rejection::UNAUTHORISED);
  }
  // A member's fork in an epoch that does not exist.
  refusedAndNothingKept(forkAt(coauthor, j, chain, 2, 7, "the future", key0), Rejection::BAD_EPOCH);
  // A fork in an epoch before its author's membership began.
  refusedAndNothingKept(makePost(late, j, 1, {}, 1'700'000'000'000, 0, "before I was here", key0),
                        Rejection::UNAUTHORISED);
  CHECK(store->forks(j).empty());

  // What its author could have written is kept, once per seq.
  auto out = store->appendBatch({forkAt(coauthor, j, chain, 2, 0, "fork a", key0)}, &kr);
  CHECK(out[0].reason == Rejection::FORK);
  CHECK(out[0].evidenceKept);
  refusedAndNothingKept(forkAt(coauthor, j, chain, 2, 0, "fork b", key0), Rejection::FORK);
  // A removed member's fork under its cut-off is evidence too: it was a member when it wrote there.
  removeMember(*store, kr, j, coauthor.key());
  out = store->appendBatch({forkAt(coauthor, j, chain, 3, 0, "fork c", key0)}, &kr);
  CHECK(out[0].reason == Rejection::FORK);
  CHECK(out[0].evidenceKept);
  CHECK(store->forks(j).size() == 2);
  CHECK(store->checkIntegrity().problems.empty());
}
