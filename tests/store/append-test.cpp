// appendBatch's per-entry outcomes, append's refusals, and the bounds of range, rangePacked and the
// find functions.
#include <catch2/catch.hpp>

#include <cctype>
#include <climits>

#include "store/lmdb.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

TEST_CASE("appendBatch gives each entry its own outcome and keeps the good ones", "[store]") {
  TempDir dir;
  Person owner("owner"), subscriber("subscriber"), outsider("outsider"), coauthor("coauthor");
  auto store = Store::open(dir.path());
  Keyring kr = owner.keyring();
  JournalId j = createJournal(*store, kr, "batch");
  Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));
  Entry genesis = *store->entry(j, owner.key(), 1);
  int64_t t = genesis.timestampMs;

  Control addSub;
  addSub.type = Control::Type::ADD_MEMBER;
  addSub.member = subscriber.key();
  addSub.wraps = {wrapTo(subscriber.key(), 0, key)};
  Control addOwner;
  addOwner.type = Control::Type::ADD_MEMBER;
  addOwner.member = coauthor.key();
  addOwner.role = Role::OWNER;

  std::vector<Entry> batch;
  batch.push_back(makePost(owner, j, 2, genesis.id, t + 1, 0, "owner 2", key));              // 0 added
  batch.push_back(makePost(outsider, j, 1, {}, t + 2, 0, "outsider 1", key));                // 1 unauthorised
  batch.push_back(makePost(outsider, j, 2, batch[1].id, t + 3, 0, "outsider 2", key));       // 2 after a refused one
  batch.push_back(makeEntry(owner, j, 3, batch[0].id, t + 4, 0, addSub, std::nullopt, {}));  // 3 added
  batch.push_back(makeEntry(subscriber, j, 1, {}, t + 5, 0, Control{},                       // 4 member since 3
                            Body{Kind::COMMENT, "subscriber 1", {batch[0].id}}, key));
  batch.push_back(batch[0]);                                                                   // 5 duplicate
  batch.push_back(makeEntry(owner, j, 4, batch[3].id, t + 6, 0, addOwner, std::nullopt, {}));  // 6 second owner
  batch.push_back(makePost(owner, j, 5, batch[6].id, t + 7, 0, "after refused", key));         // 7 after a refused one
  batch.push_back(makePost(owner, j, 4, batch[3].id, t + 8, 0, "owner 4", key));               // 8 chain goes on
  batch.push_back(makePost(owner, j, 2, genesis.id, t + 9, 0, "forged 2", key));               // 9 fork
  batch.push_back(makePost(owner, randomKey32(), 1, {}, t + 10, 0, "elsewhere", key));         // 10 unknown journal
  batch.push_back(makePost(subscriber, j, 3, batch[4].id, t + 11, 0, "gap", key));             // 11 gap
  batch.push_back(makePost(subscriber, j, 2, batch[4].id, t + 12, 1, "epoch 1", key));         // 12 bad epoch

  const std::vector<std::string> want = {"ADDED",           "unauthorised", "broken-chain", "ADDED", "ADDED",
                                         "DUPLICATE",       "unauthorised", "broken-chain", "ADDED", "fork",
                                         "unknown-journal", "broken-chain", "bad-epoch"};
  auto outcomes = store->appendBatch(batch, &kr);
  REQUIRE(outcomes.size() == batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    INFO("entry " << i << ": " << outcomes[i].message);
    CHECK(outcomeName(outcomes[i].status, outcomes[i].reason) == want[i]);
    CHECK(outcomes[i].message.empty() == (outcomes[i].status != AppendStatus::REJECTED));
  }

  // The good ones are stored, the refused ones are not.
  for (size_t i : {0, 3, 8}) CHECK(store->entry(j, owner.key(), batch[i].seq)->id == batch[i].id);
  CHECK(store->entry(j, subscriber.key(), 1)->id == batch[4].id);
  for (size_t i : {1, 2, 6, 7, 9, 10, 11, 12}) CHECK_FALSE(store->entryById(batch[i].id).has_value());
  CHECK(store->versionVector(j) == VersionVector{{owner.key(), 4}, {subscriber.key(), 1}});
  CHECK(store->journal(j)->entryCount == 5);
  CHECK(store->journal(j)->lastEntryMs == t + 8);
  CHECK(store->member(j, subscriber.key())->active);
  CHECK_FALSE(store->member(j, coauthor.key()).has_value());
  CHECK_FALSE(store->member(j, outsider.key()).has_value());
  REQUIRE(store->forks(j).size() == 1);
  CHECK(store->forks(j)[0] == protocol::packEntry(batch[9]));
  CHECK(store->timeline(j).size() == 5);

  SECTION("a batch whose entries all fail writes nothing") {
    size_t before = store->changeCounter();
    auto out = store->appendBatch({batch[1], batch[2], batch[5], batch[10]}, &kr);
    CHECK(outcomeName(out[0].status, out[0].reason) == "unauthorised");
    CHECK(outcomeName(out[2].status, out[2].reason) == "DUPLICATE");
    CHECK(store->changeCounter() == before);
  }
  SECTION("entries out of order are taken in the order given") {
    Entry five = makePost(owner, j, 5, batch[8].id, t + 20, 0, "five", key);
    Entry six = makePost(owner, j, 6, five.id, t + 21, 0, "six", key);
    auto out = store->appendBatch({six, five}, &kr);
    CHECK(outcomeName(out[0].status, out[0].reason) == "broken-chain");
    CHECK(out[1].status == AppendStatus::ADDED);
    CHECK(store->append(six, &kr) == AppendStatus::ADDED);
    CHECK(store->head(j, owner.key())->seq == 6);
  }
  SECTION("an empty batch") { CHECK(store->appendBatch({}, &kr).empty()); }
  SECTION("append() throws the refusal and leaves the store as it was") {
    size_t before = store->changeCounter();
    try {
      store->append(batch[11], &kr);
      FAIL("a gap was accepted");
    } catch (const EntryError& e) {
      CHECK(e.reason() == Rejection::BROKEN_CHAIN);
      CHECK(e.kind() == ErrorKind::CORRUPT);
    }
    CHECK(store->changeCounter() == before);
    CHECK(store->append(batch[4], &kr) == AppendStatus::DUPLICATE);
  }
}

TEST_CASE("an entry at the right seq whose prev is not the id of the author's previous entry is refused BROKEN_CHAIN",
          "[store]") {
  TempDir dir;
  Person owner("owner"), coauthor("coauthor");
  auto store = Store::open(dir.path());
  Keyring kr = owner.keyring();
  JournalId j = createJournal(*store, kr, "prev");
  addMember(*store, kr, j, coauthor.key(), Role::COAUTHOR);
  Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));
  Head head = *store->head(j, owner.key());
  int64_t t = store->journal(j)->lastEntryMs + 1;

  EntryId wrong = head.id;
  wrong[0] ^= 1;
  Entry e = makePost(owner, j, head.seq + 1, wrong, t, 0, "wrong prev", key);
  // The first entry of an author: prev must be all zero.
  Entry first = makePost(coauthor, j, 1, head.id, t, 0, "first, with a prev", key);
  for (const Entry* bad : {&e, &first}) {
    size_t before = store->changeCounter();
    auto out = store->appendBatch({*bad}, &kr);
    INFO(out[0].message);
    CHECK(outcomeName(out[0].status, out[0].reason) == "broken-chain");
    CHECK(store->changeCounter() == before);
    CHECK_FALSE(store->entryById(bad->id).has_value());
  }
  CHECK(store->head(j, owner.key())->id == head.id);
  CHECK_FALSE(store->head(j, coauthor.key()).has_value());
  // The same seq with the right prev goes in.
  CHECK(store->append(makePost(owner, j, head.seq + 1, head.id, t, 0, "right prev", key), &kr) == AppendStatus::ADDED);
}

// ---------------------------------------------------------------------------------------------
// Reading

TEST_CASE("range rangePacked and the find functions respect their bounds", "[store]") {
  TempDir dir;
  Person owner("owner");
  auto store = Store::open(dir.path());
  Keyring kr = owner.keyring();
  JournalId j = createJournal(*store, kr, "ranges");
  for (int i = 0; i < 20; ++i) post(*store, kr, j, Body{Kind::UPDATE, "post " + std::to_string(i), {}});
  auto all = store->range(j, owner.key(), 1, RANGE_LIMIT_MAX);
  REQUIRE(all.size() == 21);
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].seq == i + 1);
    if (i > 0) CHECK(all[i].prev == all[i - 1].id);
  }

  CHECK(store->range(j, owner.key(), 5, 3).size() == 3);
  CHECK(store->range(j, owner.key(), 5, 3)[0].seq == 5);
  CHECK(store->range(j, owner.key(), 22, 10).empty());
  CHECK(store->range(j, randomKey32(), 1, 10).empty());
  CHECK(store->range(j, owner.key(), 0, 1)[0].seq == 1);

  auto packed = store->rangePacked(j, owner.key(), 1, 100, SIZE_MAX);
  REQUIRE(packed.size() == 21);
  CHECK(packed[3] == protocol::packEntry(all[3]));
  // A byte budget smaller than one entry still returns one, so that a reader always progresses.
  CHECK(store->rangePacked(j, owner.key(), 1, 100, 1).size() == 1);
  size_t two = packed[0].size() + packed[1].size();
  CHECK(store->rangePacked(j, owner.key(), 1, 100, two).size() == 2);

  std::string hex = toHex(j);
  CHECK(store->findJournals(hex.substr(0, 5)) == std::vector<JournalId>{j});
  std::string upper = hex.substr(0, 6);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  CHECK(store->findJournals(upper) == std::vector<JournalId>{j});
  CHECK(store->findJournals(hex + "0").empty());
  CHECK(store->findJournals("xyz").empty());

  std::string id = toHex(all[7].id);
  CHECK(store->findEntries(id, 10) == std::vector<EntryId>{all[7].id});
  CHECK(store->findEntries(id.substr(0, 3), 10).size() >= 1);
  CHECK(store->findEntries("", 5).size() == 5);
  CHECK(store->findEntries("", 100).size() == 21);
  CHECK(store->findEntries("zz", 100).empty());
}

}  // namespace
