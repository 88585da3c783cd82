// Kinds judged again when the epoch key comes after the entries (specs/entry.md, "Judging kinds
// when the key comes later, and at read"): a member's node that took in entries before the
// owner's wrap to it judges them when the key arrives, and readJournal never shows an entry its
// author had no right to write, whatever the store holds.
#include <catch2/catch.hpp>

#include <map>

#include "crypto/aead.h"
#include "store/lmdb.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

constexpr int64_t T0_MS = 1'700'000'000'000;

// The owner's journal with a subscriber that signs an UPDATE (which it may not) and then a
// comment after it, and a co-author's update; the owner's node refuses the subscriber's chain.
struct EarlyUpdate {
  Household owner;
  Person subscriber{"subscriber"}, coauthor{"coauthor"};
  JournalId j{};
  Bytes key0;
  std::vector<Entry> ownerChain;  // before the newcomer is added
  Entry badUpdate, comment, goodUpdate;

  EarlyUpdate() {
    Keyring kr = owner.keyring();
    j = createJournal(*owner.store, kr, "early");
    addMember(*owner.store, kr, j, subscriber.key(), Role::SUBSCRIBER);
    addMember(*owner.store, kr, j, coauthor.key(), Role::COAUTHOR);
    key0 = copyOf(*owner.store->epochKey(j, 0, kr.storageKey));
    ownerChain = owner.store->range(j, owner.key(), 1, RANGE_LIMIT_MAX);
    badUpdate = makePost(subscriber, j, 1, {}, T0_MS + 1, 0, "I may not post updates", key0);
    comment = makeEntry(subscriber, j, 2, badUpdate.id, T0_MS + 2, 0, Control{},
                        Body{Kind::COMMENT, "a comment after it", {ownerChain[0].id}}, key0);
    goodUpdate = makePost(coauthor, j, 1, {}, T0_MS + 3, 0, "a co-author's update", key0);
    auto out = owner.store->appendBatch({badUpdate, comment, goodUpdate}, &kr);
    REQUIRE(outcomeName(out[0].status, out[0].reason) == "unauthorised");
    REQUIRE(outcomeName(out[1].status, out[1].reason) == "broken-chain");
    REQUIRE(out[2].status == AppendStatus::ADDED);
  }

  // The owner adds `who`, wrapping epoch 0's key to it.
  Entry add(const Household& who) { return addMember(*owner.store, owner.keyring(), j, who.key(), Role::SUBSCRIBER); }
};

std::map<EntryId, Kind> kindsRead(const Household& home, const JournalId& j) {
  std::map<EntryId, Kind> out;
  for (const auto& r : readJournal(*home.store, home.keyring(), j)) {
    if (r.body) out[r.entry.id] = r.body->kind;
  }
  return out;
}

}  // namespace

TEST_CASE("early subscriber update: entries taken in before the key wrap are judged when it arrives",
          "[store][roles][late-keys]") {
  EarlyUpdate c;
  Household newcomer;
  Keyring kr = newcomer.keyring();
  // The owner's chain up to the newcomer's addition and the members' entries reach the newcomer's
  // node first (a relay or a member forwards them): no key yet, so only what is in the clear.
  newcomer.store->appendBatch(c.ownerChain, &kr);
  for (const auto& out : newcomer.store->appendBatch({c.badUpdate, c.comment, c.goodUpdate}, &kr)) {
    REQUIRE(out.status == AppendStatus::ADDED);
  }
  REQUIRE(newcomer.store->versionVector(c.j).at(c.subscriber.key()) == 2);

  // The wrap arrives: the subscriber's update, and the comment chained on it, go.
  Entry added = c.add(newcomer);
  auto out = newcomer.store->appendBatch({added}, &kr);
  REQUIRE(out[0].status == AppendStatus::ADDED);
  CHECK(out[0].dropped == 2);
  CHECK_FALSE(newcomer.store->entryById(c.badUpdate.id).has_value());
  CHECK_FALSE(newcomer.store->entryById(c.comment.id).has_value());
  CHECK_FALSE(newcomer.store->versionVector(c.j).count(c.subscriber.key()));
  // As the owner's node, which held the key all along, holds it.
  CHECK(newcomer.store->versionVector(c.j) == c.owner.store->versionVector(c.j));
  CHECK(newcomer.store->checkIntegrity().problems.empty());

  // Read: never the subscriber's update as an update; the co-author's update still is one.
  auto kinds = kindsRead(newcomer, c.j);
  CHECK_FALSE(kinds.count(c.badUpdate.id));
  REQUIRE(kinds.count(c.goodUpdate.id));
  CHECK(kinds.at(c.goodUpdate.id) == Kind::UPDATE);

  // Offered again, now with the key held, they are refused on the way in.
  auto again = newcomer.store->appendBatch({c.badUpdate}, &kr);
  CHECK(outcomeName(again[0].status, again[0].reason) == "unauthorised");
}

TEST_CASE("early subscriber update: in one batch with the wrap, the entries after it are judged with the new key",
          "[store][roles][late-keys]") {
  EarlyUpdate c;
  Household newcomer;
  Keyring kr = newcomer.keyring();
  newcomer.store->appendBatch(c.ownerChain, &kr);
  Entry added = c.add(newcomer);
  // The co-author's entry before the wrap finds no key (and the batch remembers that); the
  // subscriber's after it must be judged with the key the wrap brought.
  auto out = newcomer.store->appendBatch({c.goodUpdate, added, c.badUpdate, c.comment}, &kr);
  CHECK(out[0].status == AppendStatus::ADDED);
  CHECK(out[1].status == AppendStatus::ADDED);
  CHECK(outcomeName(out[2].status, out[2].reason) == "unauthorised");
  CHECK(outcomeName(out[3].status, out[3].reason) == "broken-chain");
  CHECK(newcomer.store->versionVector(c.j) == c.owner.store->versionVector(c.j));
}

TEST_CASE("putEpochKey judges the entries stored without that key", "[store][roles][late-keys]") {
  EarlyUpdate c;
  Household relayLike;
  relayLike.store->appendBatch(c.ownerChain, nullptr);
  relayLike.store->appendBatch({c.badUpdate, c.comment, c.goodUpdate}, nullptr);
  CHECK(relayLike.store->putEpochKey(c.j, 0, c.key0, relayLike.storageKey.view()) == 2);
  CHECK(relayLike.store->versionVector(c.j) == c.owner.store->versionVector(c.j));
  // A key it holds already judges nothing again.
  CHECK(relayLike.store->putEpochKey(c.j, 0, c.key0, relayLike.storageKey.view()) == 0);
  CHECK(relayLike.store->checkIntegrity().problems.empty());
}

TEST_CASE("readJournal never shows an entry its author had no right to write, whatever the store holds",
          "[store][roles][late-keys]") {
  EarlyUpdate c;
  Household home;
  home.store->appendBatch(c.ownerChain, nullptr);
  home.store->appendBatch({c.badUpdate, c.comment, c.goodUpdate}, nullptr);
  // The key is put into the store's table behind its back (as a store from before the re-judging
  // would hold it): the entries stay, unjudged.
  home.store.reset();
  {
    Env env(home.dir.path(), MAP_BYTES_INITIAL, TABLES_MAX);
    WriteTxn txn(env);
    Table epochs(txn, "epochs");
    Bytes row(c.j.begin(), c.j.end());
    putU32(row, 0);
    std::string_view domain = "kith/epoch-key/v1";  // specs/entry.md, "Epoch keys at rest"
    Bytes ad(domain.begin(), domain.end());
    ad.insert(ad.end(), row.begin(), row.end());
    epochs.put(txn, row, crypto::aeadSeal(home.storageKey.view(), c.key0, ad));
    txn.commit();
  }
  home.reopen();
  REQUIRE(home.store->epochKey(c.j, 0, home.storageKey.view()).has_value());
  REQUIRE(home.store->entryById(c.badUpdate.id).has_value());

  auto read = readJournal(*home.store, home.keyring(), c.j);
  std::map<EntryId, Kind> kinds;
  for (const auto& r : read) {
    CHECK(r.entry.id != c.badUpdate.id);
    if (r.body) kinds[r.entry.id] = r.body->kind;
  }
  // The comment after it is the subscriber's to write, and is shown; the co-author's update too.
  CHECK(kinds.at(c.comment.id) == Kind::COMMENT);
  CHECK(kinds.at(c.goodUpdate.id) == Kind::UPDATE);
}
