// The journal as read (store/timeline.h): names, edits, deletions, hearts that toggle, help
// requests and their slots, and files put together from their pieces. The rules depend only on
// the set of entries held, so every order of arrival must give the same journal: tested by
// appending one family's entries to fresh stores in random orders.
#include <algorithm>
#include <random>

#include "store/timeline.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

// A journal with an owner, a co-author and two friends, whose entries are written by hand (with
// chosen timestamps), as their own nodes would write them.
struct Family {
  Household owner;
  Person coauthor{"coauthor"}, ann{"ann"}, bob{"bob"};
  JournalId journal{};
  Bytes key;
  std::map<PublicKey, std::pair<uint64_t, EntryId>> heads;  // for the hand-written authors
  std::vector<Entry> written;                               // every entry of the hand-written authors

  Family() {
    journal = createJournal(*owner.store, owner.keyring(), "Mum's journey");
    addMember(*owner.store, owner.keyring(), journal, coauthor.key(), Role::COAUTHOR);
    addMember(*owner.store, owner.keyring(), journal, ann.key(), Role::SUBSCRIBER);
    addMember(*owner.store, owner.keyring(), journal, bob.key(), Role::SUBSCRIBER);
    key = copyOf(*owner.store->epochKey(journal, 0, owner.keyring().storageKey));
  }

  Entry write(const Person& who, Body body, int64_t timestampMs) {
    auto& head = heads[who.key()];
    Entry e = makeEntry(who, journal, head.first + 1, head.second, timestampMs, 0, Control{}, std::move(body), key);
    head = {e.seq, e.id};
    written.push_back(e);
    return e;
  }
  Entry ownerPost(Body body) { return post(*owner.store, owner.keyring(), journal, body); }

  // Every entry of the journal: the owner's store's and the hand-written ones.
  std::vector<Entry> all() const {
    std::vector<Entry> out = owner.store->timeline(journal);
    std::set<EntryId> have;
    for (const auto& e : out) have.insert(e.id);
    for (const auto& e : written) {
      if (have.insert(e.id).second) out.push_back(e);
    }
    return out;
  }
};

// A fresh node of the owner's that receives `entries` in the order given (retrying those that
// arrive before the entry they follow), then reads the journal.
JournalView foldIn(const Family& f, std::vector<Entry> pending) {
  Household reader;
  // The reader is the owner's identity on another machine: it holds the keys once the genesis is in.
  Keyring kr = f.owner.keyring();
  while (!pending.empty()) {
    auto outcomes = reader.store->appendBatch(pending, &kr);
    std::vector<Entry> again;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (outcomes[i].status == AppendStatus::REJECTED) again.push_back(pending[i]);
    }
    REQUIRE(again.size() < pending.size());
    pending = std::move(again);
  }
  return foldJournal(readJournal(*reader.store, kr, f.journal));
}

Body about(Kind kind, const EntryId& ref, std::string text = "") { return Body{kind, std::move(text), {ref}}; }

const RequestView& requestOf(const JournalView& v, const EntryId& id) {
  for (const auto& q : v.requests) {
    if (q.id == id) return q;
  }
  FAIL("no such request");
  throw std::logic_error("unreachable");
}

const PostView& updateOf(const JournalView& v, const EntryId& id) {
  for (const auto& p : v.updates) {
    if (p.id == id) return p;
  }
  FAIL("no such update");
  throw std::logic_error("unreachable");
}

TEST_CASE("names, edits, deletions and hearts follow each author's latest entry", "[store][timeline]") {
  Family f;
  Body name{Kind::PROFILE, "Ann", {}};
  f.write(f.ann, name, 1000);
  f.write(f.bob, Body{Kind::PROFILE, "Ann", {}}, 1001);  // the same name: told apart by key
  f.write(f.coauthor, Body{Kind::PROFILE, "Sam", {}}, 1002);
  f.write(f.coauthor, Body{Kind::PROFILE, "Samuel", {}}, 1003);  // changed: the latest wins
  Entry update = f.write(f.coauthor, Body{Kind::UPDATE, "first draft", {}}, 2000);
  Entry gone = f.write(f.coauthor, Body{Kind::UPDATE, "posted by mistake", {}}, 2001);
  f.write(f.coauthor, about(Kind::EDIT, update.id, "second draft"), 2100);
  f.write(f.coauthor, about(Kind::EDIT, update.id, "final words"), 2200);
  f.write(f.ann, about(Kind::EDIT, update.id, "vandalised"), 2300);  // not Ann's: ignored
  f.write(f.ann, about(Kind::DELETE, update.id), 2301);              // not Ann's: ignored
  f.write(f.coauthor, about(Kind::DELETE, gone.id), 2400);
  Entry comment = f.write(f.ann, about(Kind::COMMENT, update.id, "thinking of you"), 2500);
  Entry removed = f.write(f.bob, about(Kind::COMMENT, update.id, "oops"), 2501);
  f.write(f.bob, about(Kind::DELETE, removed.id), 2502);
  f.write(f.ann, about(Kind::HEART, update.id), 2600);
  Body off = about(Kind::HEART, update.id);
  off.heartOff = true;
  f.write(f.bob, about(Kind::HEART, update.id), 2601);
  f.write(f.bob, off, 2602);                            // Bob takes his heart back
  f.write(f.ann, about(Kind::HEART, update.id), 2603);  // a second "on" counts once
  f.write(f.ann, Body{Kind::WISH, "get well soon", {}}, 2700);

  JournalView v = foldIn(f, f.all());
  CHECK(v.names.at(f.coauthor.key()) == "Samuel");
  CHECK(displayName(v, f.coauthor.key(), std::nullopt) == "Samuel");
  CHECK(displayName(v, f.ann.key(), std::nullopt) == "Ann (" + toHex(f.ann.key()).substr(0, 6) + ")");
  CHECK(displayName(v, f.bob.key(), std::nullopt) == "Ann (" + toHex(f.bob.key()).substr(0, 6) + ")");
  CHECK(displayName(v, f.ann.key(), f.ann.key()) == "you");
  CHECK(displayName(v, f.owner.key(), std::nullopt) == toHex(f.owner.key()).substr(0, 8));

  REQUIRE(v.updates.size() == 1);  // the deleted one is gone
  const PostView& p = updateOf(v, update.id);
  CHECK(p.text == "final words");
  CHECK(p.edited);
  REQUIRE(p.comments.size() == 1);
  CHECK(p.comments[0].id == comment.id);
  CHECK(p.hearts == std::set<PublicKey>{f.ann.key()});
  REQUIRE(v.wishes.size() == 1);
  CHECK(v.wishes[0].text == "get well soon");
}

TEST_CASE("claims made apart resolve the same way on every replica, whatever the order of arrival",
          "[store][timeline]") {
  uint64_t seed = testSeed("timeline claims");
  std::mt19937_64 rng(seed);
  Family f;
  Body ask{Kind::ASK, "Meal for Thursday", {}};
  ask.whenMs = 1'764'784'800'000;
  ask.slots = 1;
  Entry meal = f.ownerPost(ask);
  Body drive{Kind::ASK, "Drive to chemo", {}};
  drive.slots = 2;
  Entry chemo = f.ownerPost(drive);
  const int64_t t0 = meal.timestampMs + 10;

  // Ann and Bob claim the one meal slot while their nodes are apart; Ann's claim is earlier.
  Entry bobClaim = f.write(f.bob, about(Kind::CLAIM, meal.id), t0 + 5);
  Entry annClaim = f.write(f.ann, about(Kind::CLAIM, meal.id), t0 + 3);
  // The drive: Ann claims, gives it back, claims again (her latest claim counts, from its time);
  // the co-author and Bob claim in between.
  f.write(f.ann, about(Kind::CLAIM, chemo.id), t0 + 1);
  f.write(f.coauthor, about(Kind::CLAIM, chemo.id), t0 + 2);
  f.write(f.ann, about(Kind::UNCLAIM, chemo.id), t0 + 4);
  f.write(f.bob, about(Kind::CLAIM, chemo.id), t0 + 6);
  f.write(f.ann, about(Kind::CLAIM, chemo.id), t0 + 7);

  // Each on its own sees its claim stand.
  {
    std::vector<Entry> annOnly = f.owner.store->timeline(f.journal);
    annOnly.push_back(annClaim);
    CHECK(requestOf(foldIn(f, annOnly), meal.id).holders == std::vector<PublicKey>{f.ann.key()});
  }
  {
    std::vector<Entry> bobOnly = f.owner.store->timeline(f.journal);
    bobOnly.push_back(bobClaim);
    CHECK(requestOf(foldIn(f, bobOnly), meal.id).holders == std::vector<PublicKey>{f.bob.key()});
  }

  std::vector<Entry> all = f.all();
  for (int round = 0; round < 12; ++round) {
    std::vector<Entry> order = all;
    std::shuffle(order.begin(), order.end(), rng);
    JournalView v = foldIn(f, order);
    INFO("seed " << seed << " round " << round);
    REQUIRE(v.requests.size() == 2);
    const RequestView& m = v.requests[0].id == meal.id ? v.requests[0] : v.requests[1];
    const RequestView& d = v.requests[0].id == meal.id ? v.requests[1] : v.requests[0];
    CHECK(m.state == RequestState::OPEN);
    CHECK(m.holders == std::vector<PublicKey>{f.ann.key()});
    CHECK(m.waiting == std::vector<PublicKey>{f.bob.key()});
    CHECK(d.holders == std::vector<PublicKey>{f.coauthor.key(), f.bob.key()});
    CHECK(d.waiting == std::vector<PublicKey>{f.ann.key()});
  }

  // Ann gives the meal back: Bob moves up. The owner marks the drive done; a cancel wins over it.
  f.write(f.ann, about(Kind::UNCLAIM, meal.id), t0 + 20);
  f.ownerPost(about(Kind::DONE, chemo.id));
  JournalView v = foldIn(f, f.all());
  const RequestView& m = v.requests[0].id == meal.id ? v.requests[0] : v.requests[1];
  const RequestView& d = v.requests[0].id == meal.id ? v.requests[1] : v.requests[0];
  CHECK(m.holders == std::vector<PublicKey>{f.bob.key()});
  CHECK(m.waiting.empty());
  CHECK(d.state == RequestState::DONE);
  f.ownerPost(about(Kind::CANCEL, chemo.id));
  v = foldIn(f, f.all());
  CHECK((v.requests[0].id == chemo.id ? v.requests[0] : v.requests[1]).state == RequestState::CANCELLED);
}

TEST_CASE("a subscriber's request, done or cancel is refused, and refs are required", "[store][timeline]") {
  Family f;
  Body ask{Kind::ASK, "Help me", {}};
  ask.slots = 1;
  CHECK(protocol::refuseBody(Role::SUBSCRIBER, ask).has_value());
  CHECK_FALSE(protocol::refuseBody(Role::COAUTHOR, ask).has_value());
  CHECK(protocol::refuseBody(Role::SUBSCRIBER, about(Kind::DONE, randomKey32())).has_value());
  CHECK_FALSE(protocol::refuseBody(Role::SUBSCRIBER, about(Kind::CLAIM, randomKey32())).has_value());
  Body bare{Kind::CLAIM, "", {}};
  auto refused = protocol::refuseBody(Role::SUBSCRIBER, bare);
  REQUIRE(refused);
  CHECK(refused->reason == Rejection::MALFORMED);
  // A subscriber's request written anyway is refused on append by a node that holds the key.
  Entry e = makeEntry(f.ann, f.journal, 1, EntryId{}, 5000, 0, Control{}, ask, f.key);
  Keyring kr = f.owner.keyring();
  CHECK_THROWS_AS(f.owner.store->append(e, &kr), EntryError);
}

TEST_CASE("bodies out of shape for their kind are malformed", "[store][timeline]") {
  Family f;
  auto sign = [&](const Body& b) { return makeEntry(f.ann, f.journal, 1, EntryId{}, 1, 0, Control{}, b, f.key); };
  Body askNoSlots{Kind::ASK, "x", {}};
  CHECK_THROWS_AS(sign(askNoSlots), EntryError);
  Body slotsOnUpdate{Kind::UPDATE, "x", {}};
  slotsOnUpdate.slots = 2;
  CHECK_THROWS_AS(sign(slotsOnUpdate), EntryError);
  Body heartOffOnComment = about(Kind::COMMENT, randomKey32(), "x");
  heartOffOnComment.heartOff = true;
  CHECK_THROWS_AS(sign(heartOffOnComment), EntryError);
  Body emptyName{Kind::PROFILE, "", {}};
  CHECK_THROWS_AS(sign(emptyName), EntryError);
  Body twoLines{Kind::PROFILE, "Ann\nBob", {}};
  CHECK_THROWS_AS(sign(twoLines), EntryError);
  Body chunkWithText{Kind::CHUNK, "x", {}};
  chunkWithText.data = Bytes(10, 1);
  CHECK_THROWS_AS(sign(chunkWithText), EntryError);
  Body dataOnUpdate{Kind::UPDATE, "x", {}};
  dataOnUpdate.data = Bytes(10, 1);
  CHECK_THROWS_AS(sign(dataOnUpdate), EntryError);
  Body photoOnWish{Kind::WISH, "x", {}};
  photoOnWish.attachments.push_back(protocol::Attachment{"a.jpg", "image/jpeg", 10, randomKey32(), {randomKey32()}});
  CHECK_THROWS_AS(sign(photoOnWish), EntryError);
  Body wrongPieces{Kind::UPDATE, "x", {}};
  wrongPieces.attachments.push_back(
      protocol::Attachment{"a.jpg", "image/jpeg", protocol::CHUNK_BYTES_MAX + 1, randomKey32(), {randomKey32()}});
  CHECK_THROWS_AS(sign(wrongPieces), EntryError);
  Body folderName{Kind::UPDATE, "x", {}};
  folderName.attachments.push_back(protocol::Attachment{"../a.jpg", "image/jpeg", 10, randomKey32(), {randomKey32()}});
  CHECK_THROWS_AS(sign(folderName), EntryError);
  // And a well-formed one round-trips through encryption.
  Body fine{Kind::UPDATE, "x", {}};
  fine.attachments.push_back(protocol::Attachment{"a.jpg", "image/jpeg", 10, randomKey32(), {randomKey32()}});
  Entry e = sign(fine);
  auto opened = protocol::openBody(e, f.key);
  REQUIRE(opened);
  CHECK(opened->attachments == fine.attachments);
}

TEST_CASE("a file is put together from its pieces, checked, and reported while pieces are missing",
          "[store][timeline]") {
  Family f;
  Bytes photo(protocol::CHUNK_BYTES_MAX * 2 + 123);
  for (size_t i = 0; i < photo.size(); ++i) photo[i] = static_cast<uint8_t>(i * 7 + 3);
  size_t calls = 0;
  protocol::Attachment a = postAttachment(*f.owner.store, f.owner.keyring(), f.journal, "scan.png", "image/png", photo,
                                          [&](size_t done, size_t total) {
                                            ++calls;
                                            CHECK(total == 3);
                                            CHECK(done == calls);
                                          });
  CHECK(calls == 3);
  REQUIRE(a.chunks.size() == 3);
  Body carrying{Kind::UPDATE, "the scan", {}};
  carrying.attachments.push_back(a);
  Entry update = f.ownerPost(carrying);
  CHECK(readAttachment(*f.owner.store, f.owner.keyring(), f.journal, a) == photo);

  // The timeline holds no piece's bytes; the update names the file.
  for (const auto& r : readJournal(*f.owner.store, f.owner.keyring(), f.journal)) {
    if (r.body && r.body->kind == Kind::CHUNK) CHECK(r.body->data.empty());
  }
  JournalView v = foldJournal(readJournal(*f.owner.store, f.owner.keyring(), f.journal));
  CHECK(updateOf(v, update.id).attachments == std::vector<protocol::Attachment>{a});

  // A node that holds only some pieces says how many are missing.
  Household partial;
  std::vector<Entry> some;
  for (const auto& e : f.owner.store->timeline(f.journal)) {
    if (e.id != a.chunks[1] && e.id != a.chunks[2] && e.id != update.id) some.push_back(e);
  }
  Keyring kr = f.owner.keyring();
  // Entries of one millisecond may sit in either order in the timeline: retry what arrived early.
  while (!some.empty()) {
    auto outcomes = partial.store->appendBatch(some, &kr);
    std::vector<Entry> again;
    for (size_t i = 0; i < some.size(); ++i) {
      if (outcomes[i].status == AppendStatus::REJECTED) again.push_back(some[i]);
    }
    REQUIRE(again.size() < some.size());
    some = std::move(again);
  }
  Error missing = errorOf([&] { readAttachment(*partial.store, kr, f.journal, a); });
  CHECK(missing.kind() == ErrorKind::NOT_FOUND);
  CHECK(std::string(missing.what()).find("2 of the 3 pieces") != std::string::npos);

  // A file whose hash does not match its pieces is refused, not shown.
  protocol::Attachment lying = a;
  lying.hash[0] ^= 1;
  CHECK(errorOf([&] { readAttachment(*f.owner.store, kr, f.journal, lying); }).kind() == ErrorKind::CORRUPT);
  // Over the limit: refused before anything is written.
  Bytes huge(protocol::ATTACHMENT_BYTES_MAX + 1);
  uint64_t before = f.owner.store->journal(f.journal)->entryCount;
  CHECK_THROWS(postAttachment(*f.owner.store, kr, f.journal, "big.jpg", "image/jpeg", huge));
  CHECK(f.owner.store->journal(f.journal)->entryCount == before);
}

}  // namespace
