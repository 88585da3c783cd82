// A removal's cut-off (specs/entry.md, "Removal and the cut-off"): the removed member's entries
// up to it stand whenever they arrive, those past it are refused, and a node that took some in
// before the removal reached it drops them, so that every replica ends with the same entries
// whatever the order of arrival. Re-adding the key starts a new tenure.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

constexpr int64_t T0_MS = 1'700'000'000'000;

// Every entry id of the journal in (author, seq) order, and the version vector: what replicas
// must agree on.
struct Replica {
  VersionVector heads;
  std::vector<EntryId> ids;
  bool operator==(const Replica& o) const { return heads == o.heads && ids == o.ids; }
};

Replica replicaOf(const Store& store, const JournalId& j) {
  Replica r;
  r.heads = store.versionVector(j);
  for (const auto& [author, last] : r.heads) {
    for (const Entry& e : store.range(j, author, 1, RANGE_LIMIT_MAX)) r.ids.push_back(e.id);
  }
  return r;
}

std::map<EntryId, std::string> outcomes(Store& store, const std::vector<Entry>& batch, const Keyring* kr) {
  std::map<EntryId, std::string> out;
  auto got = store.appendBatch(batch, kr);
  for (size_t i = 0; i < batch.size(); ++i) out[batch[i].id] = outcomeName(got[i].status, got[i].reason);
  return out;
}

// The owner's journal with a co-author whose chain the owner holds in part when it removes it.
struct Removal {
  Household owner;
  Person coauthor{"coauthor"};
  JournalId j{};
  Bytes key0;
  std::vector<Entry> before;  // the owner's entries up to (not with) the removal
  std::vector<Entry> chain;   // the co-author's five entries; the owner holds three
  Entry removal;

  Removal() {
    Keyring kr = owner.keyring();
    j = createJournal(*owner.store, kr, "cut-off");
    addMember(*owner.store, kr, j, coauthor.key(), Role::COAUTHOR);
    key0 = copyOf(*owner.store->epochKey(j, 0, kr.storageKey));
    before = owner.store->range(j, owner.key(), 1, RANGE_LIMIT_MAX);
    // The last two are the journal's latest entries, so dropping them moves its last time back;
    // they are comments, which any role may write, so that only the cut-off refuses them.
    for (uint64_t seq = 1; seq <= 5; ++seq) {
      EntryId prev = seq > 1 ? chain.back().id : EntryId{};
      std::string text = "co-author " + std::to_string(seq);
      Body body = seq <= 3 ? Body{Kind::UPDATE, text, {}} : Body{Kind::COMMENT, text, {chain.front().id}};
      chain.push_back(
          makeEntry(coauthor, j, seq, prev, T0_MS * 2 + static_cast<int64_t>(seq), 0, Control{}, body, key0));
    }
    for (size_t i = 0; i < 3; ++i) REQUIRE(owner.store->append(chain[i], &kr) == AppendStatus::ADDED);
    removal = removeMember(*owner.store, kr, j, coauthor.key());
  }
};

}  // namespace

TEST_CASE("a removal records the removed member's last seq in the owner's store as its cut-off", "[store][cut-off]") {
  Removal r;
  CHECK(r.removal.control.lastSeq == 3);
  auto m = r.owner.store->member(r.j, r.coauthor.key());
  REQUIRE(m.has_value());
  CHECK_FALSE(m->active);
  REQUIRE(m->tenures.size() == 1);
  CHECK(m->tenures[0].lastSeq == std::optional<uint64_t>(3));
  // The rest of the chain is refused by the owner, which holds the removal.
  Keyring kr = r.owner.keyring();
  auto got = outcomes(*r.owner.store, {r.chain[3], r.chain[4]}, &kr);
  CHECK(got[r.chain[3].id] == "unauthorised");
  CHECK(got[r.chain[4].id] == "broken-chain");
}

TEST_CASE("a removed member's entries up to the cut-off are kept whenever they arrive and those past it never",
          "[store][cut-off]") {
  Removal r;
  Replica want = replicaOf(*r.owner.store, r.j);
  REQUIRE(want.heads.at(r.coauthor.key()) == 3);

  SECTION("a member that took the whole chain in before the removal drops what is past the cut-off") {
    Household member;
    Keyring kr = member.keyring();
    member.store->appendBatch(r.before, &kr);
    for (const auto& out : member.store->appendBatch(r.chain, &kr)) REQUIRE(out.status == AppendStatus::ADDED);
    CHECK(member.store->head(r.j, r.coauthor.key())->seq == 5);
    auto out = member.store->appendBatch({r.removal}, &kr);
    REQUIRE(out[0].status == AppendStatus::ADDED);
    CHECK(out[0].dropped == 2);
    CHECK(replicaOf(*member.store, r.j) == want);
    CHECK(member.store->head(r.j, r.coauthor.key())->id == r.chain[2].id);
    CHECK_FALSE(member.store->entryById(r.chain[4].id).has_value());
    CHECK(member.store->timeline(r.j).size() == r.owner.store->timeline(r.j).size());
    CHECK(member.store->journal(r.j)->entryCount == r.owner.store->journal(r.j)->entryCount);
    CHECK(member.store->journal(r.j)->lastEntryMs == r.owner.store->journal(r.j)->lastEntryMs);
    CHECK(member.store->checkIntegrity().problems.empty());
    // Offered again (by a peer that has not seen the removal), they are refused.
    auto again = outcomes(*member.store, {r.chain[3], r.chain[4]}, &kr);
    CHECK(again[r.chain[3].id] == "unauthorised");
  }
  SECTION("a member that gets the removal first takes the chain up to the cut-off and refuses the rest") {
    Household member;
    Keyring kr = member.keyring();
    member.store->appendBatch(r.before, &kr);
    REQUIRE(member.store->append(r.removal, &kr) == AppendStatus::ADDED);
    std::vector<Entry> reversed(r.chain.rbegin(), r.chain.rend());
    // Out of order, retried as replication retries: only what follows the chain goes in.
    for (int round = 0; round < 5; ++round) member.store->appendBatch(reversed, &kr);
    CHECK(replicaOf(*member.store, r.j) == want);
    CHECK(member.store->checkIntegrity().problems.empty());
  }
  SECTION("a relay that gets part before the removal and part after ends the same") {
    Household relay;
    relay.store->appendBatch(r.before, nullptr);
    relay.store->appendBatch({r.chain[0], r.chain[1]}, nullptr);
    REQUIRE(relay.store->append(r.removal, nullptr) == AppendStatus::ADDED);
    auto got = outcomes(*relay.store, {r.chain[2], r.chain[3], r.chain[4]}, nullptr);
    CHECK(got[r.chain[2].id] == "ADDED");
    CHECK(got[r.chain[3].id] == "unauthorised");
    CHECK(replicaOf(*relay.store, r.j) == want);
  }
  SECTION("a relay that took everything but the last before the removal drops one") {
    Household relay;
    relay.store->appendBatch(r.before, nullptr);
    relay.store->appendBatch({r.chain[0], r.chain[1], r.chain[2], r.chain[3]}, nullptr);
    auto out = relay.store->appendBatch({r.removal, r.chain[4]}, nullptr);
    CHECK(out[0].dropped == 1);
    CHECK(outcomeName(out[1].status, out[1].reason) == "broken-chain");  // its seq 4 went
    CHECK(replicaOf(*relay.store, r.j) == want);
    CHECK(relay.store->checkIntegrity().problems.empty());
  }
}

TEST_CASE("a removed member added again writes on after its cut-off in the new epoch and never under the old one",
          "[store][cut-off]") {
  Removal r;
  Keyring kr = r.owner.keyring();
  // Added again, as a subscriber this time: a second tenure, from epoch 1.
  Entry readd = addMember(*r.owner.store, kr, r.j, r.coauthor.key(), Role::SUBSCRIBER);
  auto m = r.owner.store->member(r.j, r.coauthor.key());
  REQUIRE(m->tenures.size() == 2);
  CHECK(m->tenures[1].sinceEpoch == 1);
  CHECK(m->role == Role::SUBSCRIBER);
  Bytes key1 = copyOf(*r.owner.store->epochKey(r.j, 1, kr.storageKey));
  // A member that will take everything in below (added now, so every key is wrapped to it).
  Household member;
  Entry memberAdded = addMember(*r.owner.store, kr, r.j, member.key(), Role::SUBSCRIBER);

  // Its entry 4 written before it learnt of its removal (epoch 0) stays out, even now.
  auto got = outcomes(*r.owner.store, {r.chain[3]}, &kr);
  CHECK(got[r.chain[3].id] == "unauthorised");
  // Its new entry 4 in epoch 1 goes in; an update is not a subscriber's to write.
  Entry comment = makeEntry(r.coauthor, r.j, 4, r.chain[2].id, T0_MS * 3, 1, Control{},
                            Body{Kind::COMMENT, "back again", {r.chain[0].id}}, key1);
  Entry update = makePost(r.coauthor, r.j, 5, comment.id, T0_MS * 3 + 1, 1, "an update", key1);
  got = outcomes(*r.owner.store, {comment, update}, &kr);
  CHECK(got[comment.id] == "ADDED");
  CHECK(got[update.id] == "unauthorised");

  // Its updates of the first tenure still show as updates: judged by the role it had then.
  std::map<EntryId, Kind> kinds;
  for (const auto& e : readJournal(*r.owner.store, kr, r.j)) {
    if (e.body) kinds[e.entry.id] = e.body->kind;
  }
  CHECK(kinds.at(r.chain[0].id) == Kind::UPDATE);
  CHECK(kinds.at(comment.id) == Kind::COMMENT);
  Replica want = replicaOf(*r.owner.store, r.j);

  // The member held the old entries 4 and 5 before the removal (it took the journal in from a
  // peer that had them), then gets the rest.
  Keyring mk = member.keyring();
  member.store->appendBatch(r.before, &mk);
  member.store->appendBatch(r.chain, &mk);
  auto rest = r.owner.store->range(r.j, r.owner.key(), r.removal.seq, RANGE_LIMIT_MAX);
  REQUIRE(rest.front().id == r.removal.id);
  REQUIRE(rest[1].id == readd.id);
  REQUIRE(rest.back().id == memberAdded.id);
  member.store->appendBatch(rest, &mk);
  got = outcomes(*member.store, {r.chain[3], comment, update}, &mk);
  CHECK(got[r.chain[3].id] == "unauthorised");
  CHECK(got[comment.id] == "ADDED");
  CHECK(got[update.id] == "unauthorised");
  CHECK(replicaOf(*member.store, r.j) == want);
  CHECK(member.store->checkIntegrity().problems.empty());
}

TEST_CASE("a removal whose cut-off goes back past an earlier one is refused MALFORMED", "[store][cut-off]") {
  Removal r;
  Keyring kr = r.owner.keyring();
  addMember(*r.owner.store, kr, r.j, r.coauthor.key(), Role::COAUTHOR);
  auto head = r.owner.store->head(r.j, r.owner.key());
  uint32_t epoch = r.owner.store->journal(r.j)->epoch + 1;
  EntryDraft d;
  d.journal = r.j;
  d.seq = head->seq + 1;
  d.prev = head->id;
  d.timestampMs = T0_MS * 4;
  d.epoch = epoch;
  d.control.type = Control::Type::REMOVE_MEMBER;
  d.control.member = r.coauthor.key();
  d.control.newEpoch = epoch;
  d.control.wraps = {wrapTo(r.owner.key(), epoch, randomBytes(crypto::AEAD_KEY_BYTES))};
  d.control.lastSeq = 2;  // the first removal's cut-off was 3
  Entry back = protocol::signEntry(r.owner.identity, d, std::nullopt);
  auto got = outcomes(*r.owner.store, {back}, &kr);
  CHECK(got[back.id] == "malformed");
  // The same removal at the earlier cut-off is taken; the store's own removeMember never goes
  // back either (it holds the co-author's head, 3).
  d.control.lastSeq = 3;
  Entry same = protocol::signEntry(r.owner.identity, d, std::nullopt);
  got = outcomes(*r.owner.store, {same}, &kr);
  CHECK(got[same.id] == "ADDED");
}
