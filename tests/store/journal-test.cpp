// What an author does through store/journal.h: create a journal (its epoch-0 key sealed at rest),
// post, add and remove members (a new epoch whose key the removed member's node never gets), and
// read back, decrypted where this node holds the key and nowhere in the clear on disk.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "protocol/entry.h"
#include "store/journal.h"
#include "store/store.h"
#include "tests/support/errors.h"
#include "tests/support/temp-dir.h"

namespace {

using namespace kith;
using namespace kith::store;
using protocol::Body;
using protocol::Control;
using protocol::EntryDraft;
using protocol::EntryError;
using protocol::Kind;
using protocol::Rejection;
using protocol::Role;
using test::errorOf;
using test::kindName;
using test::TempDir;

// A person with their own node: an identity, the at-rest key, and a store in a temp dir.
struct Node {
  explicit Node(std::string n)
      : name(std::move(n)), identity(crypto::Identity::generate()), storageKey(identity.deriveKey("kithstor", 1)),
        store(Store::open(dir.path())) {}
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  Keyring keyring() const { return Keyring{identity, storageKey.view()}; }
  const PublicKey& key() const { return identity.publicKey(); }
  void reopen() {
    store.reset();
    store = Store::open(dir.path());
  }

  std::string name;
  TempDir dir;
  crypto::Identity identity;
  crypto::SecretBuffer storageKey;
  std::unique_ptr<Store> store;
};

Bytes copyOf(const crypto::SecretBuffer& s) { return Bytes(s.view().begin(), s.view().end()); }
std::string asString(ByteView b) { return std::string(asChars(b)); }

// Copies every entry `from` holds of the journal into `to` with `to`'s keyring, as replication
// would: in timeline order, retrying what arrived before the entry it depends on (two entries in
// the same millisecond may sit in either order in the timeline: an author's next entry before its
// previous one, or a member's entry before the owner's entry that added it).
void replicate(const Node& from, Node& to, const JournalId& j, bool withKeyring = true) {
  std::vector<Entry> pending = from.store->timeline(j);
  Keyring kr = to.keyring();
  while (!pending.empty()) {
    auto outcomes = to.store->appendBatch(pending, withKeyring ? &kr : nullptr);
    std::vector<Entry> again;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (outcomes[i].status == AppendStatus::REJECTED) {
        INFO(outcomes[i].message);
        REQUIRE((outcomes[i].reason == Rejection::BROKEN_CHAIN || outcomes[i].reason == Rejection::UNAUTHORISED));
        again.push_back(pending[i]);
      }
    }
    REQUIRE(again.size() < pending.size());
    pending = std::move(again);
  }
  REQUIRE(to.store->versionVector(j) == from.store->versionVector(j));
}

// The body of `posted` as `reader` reads the journal: the outer optional is empty when the entry
// is not there, the inner one when it is there but unreadable.
std::optional<std::optional<Body>> bodyOf(const Node& reader, const JournalId& j, const Entry& posted) {
  for (ReadEntry& r : readJournal(*reader.store, reader.keyring(), j)) {
    if (r.entry.id == posted.id) return std::optional<std::optional<Body>>(std::in_place, std::move(r.body));
  }
  return std::nullopt;
}

TEST_CASE("createJournal stores the epoch-0 key sealed at rest", "[store]") {
  Node owner("owner"), other("other");
  JournalId j = createJournal(*owner.store, owner.keyring(), "Mum's journal");
  Store& store = *owner.store;

  auto info = store.journal(j);
  REQUIRE(info.has_value());
  CHECK(info->owner == owner.key());
  CHECK(info->epoch == 0);
  CHECK(info->entryCount == 1);
  CHECK(store.findJournals(toHex(j)) == std::vector<JournalId>{j});
  auto me = store.member(j, owner.key());
  REQUIRE(me.has_value());
  CHECK(me->role == Role::OWNER);
  CHECK(me->active);

  auto genesis = store.entry(j, owner.key(), 1);
  REQUIRE(genesis.has_value());
  CHECK(genesis->control.type == Control::Type::CREATE);
  CHECK(protocol::journalIdFor(owner.key(), genesis->control.salt) == j);
  REQUIRE(genesis->control.wraps.size() == 1);
  CHECK(genesis->control.wraps[0].member == owner.key());
  CHECK(genesis->control.wraps[0].epoch == 0);

  auto key = store.epochKey(j, 0, owner.storageKey.view());
  REQUIRE(key.has_value());
  CHECK(key->size() == crypto::AEAD_KEY_BYTES);
  // It is the key wrapped to the owner in the genesis.
  auto unwrapped =
      crypto::openSealed(owner.identity.boxPublicKey(), owner.identity.boxSecret(), genesis->control.wraps[0].sealed);
  REQUIRE(unwrapped.has_value());
  CHECK(copyOf(*unwrapped) == copyOf(*key));
  CHECK_FALSE(store.epochKey(j, 1, owner.storageKey.view()).has_value());

  // Another identity's storage key does not open it: the store is not theirs.
  Error err = errorOf([&] { store.epochKey(j, 0, other.storageKey.view()); });
  CHECK(std::string(kindName(err.kind())) == "CORRUPT");
  CHECK_FALSE(err.hint().empty());

  // A second journal of the same owner has its own id and key.
  JournalId j2 = createJournal(store, owner.keyring(), "Dad's journal");
  CHECK(j2 != j);
  CHECK(copyOf(*store.epochKey(j2, 0, owner.storageKey.view())) != copyOf(*key));
  CHECK(journalTitle(store, owner.keyring(), j2) == "Dad's journal");

  // On disk: neither the epoch key nor the storage key in the clear, while the journal id (which
  // is stored as it is) is found by the same search.
  std::string raw = asString(key->view());
  owner.store.reset();
  CHECK_FALSE(test::anyFileContains(owner.dir.path(), raw));
  CHECK_FALSE(test::anyFileContains(owner.dir.path(), asString(owner.storageKey.view())));
  CHECK(test::anyFileContains(owner.dir.path(), asString(j)));
  owner.reopen();
  CHECK(copyOf(*owner.store->epochKey(j, 0, owner.storageKey.view())) == Bytes(raw.begin(), raw.end()));
}

TEST_CASE("a removed member's node gets no key for the new epoch", "[store]") {
  Node owner("owner"), alice("alice"), bob("bob"), relay("relay");
  JournalId j = createJournal(*owner.store, owner.keyring(), "Mum's journal");
  addMember(*owner.store, owner.keyring(), j, alice.key(), Role::SUBSCRIBER);
  addMember(*owner.store, owner.keyring(), j, bob.key(), Role::COAUTHOR);
  Entry addRelay = addMember(*owner.store, owner.keyring(), j, relay.key(), Role::RELAY);
  CHECK(addRelay.control.wraps.empty());
  replicate(owner, alice, j);
  replicate(owner, bob, j);

  // Bob posts from his own node; the owner takes it in.
  Entry bobs = post(*bob.store, bob.keyring(), j, Body{Kind::UPDATE, "Bob drove her to the clinic", {}});
  CHECK(owner.store->append(bobs, nullptr) == AppendStatus::ADDED);
  Entry before = post(*owner.store, owner.keyring(), j, Body{Kind::UPDATE, "Before: all is well", {}});

  Entry removal = removeMember(*owner.store, owner.keyring(), j, alice.key());
  CHECK(removal.control.newEpoch == 1);
  CHECK(removal.epoch == 1);
  std::set<PublicKey> wrapped;
  for (const auto& w : removal.control.wraps) {
    CHECK(w.epoch == 1);
    wrapped.insert(w.member);
  }
  CHECK(wrapped == std::set<PublicKey>{owner.key(), bob.key()});  // not alice, not the relay
  const std::string secret = "After: the results came back and we are relieved (alice must not read this)";
  Entry after = post(*owner.store, owner.keyring(), j, Body{Kind::UPDATE, secret, {}});
  CHECK(after.epoch == 1);
  auto key1 = owner.store->epochKey(j, 1, owner.storageKey.view());
  REQUIRE(key1.has_value());

  replicate(owner, alice, j);
  replicate(owner, bob, j);
  replicate(owner, relay, j);

  SECTION("alice keeps the old key and gets no new one") {
    Store& s = *alice.store;
    CHECK(s.journal(j)->epoch == 1);
    CHECK_FALSE(s.member(j, alice.key())->active);
    CHECK(copyOf(*s.epochKey(j, 0, alice.storageKey.view())) ==
          copyOf(*owner.store->epochKey(j, 0, owner.storageKey.view())));
    CHECK_FALSE(s.epochKey(j, 1, alice.storageKey.view()).has_value());
    auto sawBefore = bodyOf(alice, j, before);
    REQUIRE(sawBefore.has_value());
    REQUIRE(sawBefore->has_value());
    CHECK((*sawBefore)->text == "Before: all is well");
    auto sawAfter = bodyOf(alice, j, after);
    REQUIRE(sawAfter.has_value());       // the ciphertext is there...
    CHECK_FALSE(sawAfter->has_value());  // ...and unreadable
    alice.store.reset();
    CHECK_FALSE(test::anyFileContains(alice.dir.path(), secret));
    alice.reopen();
    // And she cannot post any more.
    Error err = errorOf([&] { post(*alice.store, alice.keyring(), j, Body{Kind::COMMENT, "hello?", {}}); });
    CHECK(std::string(kindName(err.kind())) == "AUTH");
  }
  SECTION("bob gets the new key and reads what came after") {
    CHECK(copyOf(*bob.store->epochKey(j, 1, bob.storageKey.view())) == copyOf(*key1));
    auto sawAfter = bodyOf(bob, j, after);
    REQUIRE(sawAfter.has_value());
    REQUIRE(sawAfter->has_value());
    CHECK((*sawAfter)->text == secret);
    // Bob's next post is in the new epoch.
    Entry next = post(*bob.store, bob.keyring(), j, Body{Kind::COMMENT, "Great news", {after.id}});
    CHECK(next.epoch == 1);
    CHECK(owner.store->append(next, nullptr) == AppendStatus::ADDED);
  }
  SECTION("the relay holds the ciphertext and no key at all") {
    CHECK(relay.store->journal(j)->entryCount == owner.store->journal(j)->entryCount);
    CHECK_FALSE(relay.store->epochKey(j, 0, relay.storageKey.view()).has_value());
    CHECK_FALSE(relay.store->epochKey(j, 1, relay.storageKey.view()).has_value());
    for (const ReadEntry& r : readJournal(*relay.store, relay.keyring(), j)) CHECK_FALSE(r.body.has_value());
    Error err = errorOf([&] { post(*relay.store, relay.keyring(), j, Body{Kind::COMMENT, "relay", {}}); });
    CHECK(std::string(kindName(err.kind())) == "AUTH");
    relay.store.reset();
    CHECK_FALSE(test::anyFileContains(relay.dir.path(), secret));
    CHECK_FALSE(test::anyFileContains(relay.dir.path(), "Before: all is well"));
  }
  SECTION("added again, alice gets every epoch's key") {
    Entry readd = addMember(*owner.store, owner.keyring(), j, alice.key(), Role::SUBSCRIBER);
    CHECK(readd.control.wraps.size() == 2);
    replicate(owner, alice, j);
    CHECK(alice.store->member(j, alice.key())->active);
    CHECK(alice.store->member(j, alice.key())->sinceEpoch == 1);
    CHECK(copyOf(*alice.store->epochKey(j, 1, alice.storageKey.view())) == copyOf(*key1));
    CHECK((*bodyOf(alice, j, after))->text == secret);
  }
  SECTION("what the owner may not do") {
    Keyring kr = owner.keyring();
    size_t before = owner.store->changeCounter();
    CHECK(std::string(kindName(errorOf([&] { removeMember(*owner.store, kr, j, alice.key()); }).kind())) ==
          "NOT_FOUND");
    CHECK(std::string(kindName(errorOf([&] { removeMember(*owner.store, kr, j, owner.key()); }).kind())) == "INPUT");
    CHECK(std::string(kindName(errorOf([&] { addMember(*owner.store, kr, j, bob.key(), Role::SUBSCRIBER); }).kind())) ==
          "CONFLICT");
    JournalId unknown{};
    unknown[0] = 1;
    CHECK(std::string(kindName(errorOf([&] {
                                 addMember(*owner.store, kr, unknown, bob.key(), Role::SUBSCRIBER);
                               }).kind())) == "NOT_FOUND");
    CHECK(std::string(kindName(errorOf([&] { removeMember(*owner.store, kr, unknown, bob.key()); }).kind())) ==
          "NOT_FOUND");
    CHECK(owner.store->changeCounter() == before);
    // A coauthor is not the owner.
    CHECK(std::string(kindName(errorOf([&] { removeMember(*bob.store, bob.keyring(), j, owner.key()); }).kind())) ==
          "AUTH");
    CHECK(std::string(kindName(errorOf([&] {
                                 addMember(*bob.store, bob.keyring(), j, alice.key(), Role::SUBSCRIBER);
                               }).kind())) == "AUTH");
  }
}

TEST_CASE("readJournal decrypts what this node holds a key for and nothing is in the clear on disk", "[store]") {
  Node owner("owner"), sub("subscriber"), outsider("outsider");
  const std::string title = "Mum's journal (a title nobody outside may read)";
  const std::string sentence = "Mum's surgery went well, she is home on Thursday; please send soup";
  JournalId j = createJournal(*owner.store, owner.keyring(), title);
  addMember(*owner.store, owner.keyring(), j, sub.key(), Role::SUBSCRIBER);
  Entry update = post(*owner.store, owner.keyring(), j, Body{Kind::UPDATE, sentence, {}});
  Entry comment = post(*owner.store, owner.keyring(), j, Body{Kind::COMMENT, "Thank you all", {update.id}});
  Entry heart = post(*owner.store, owner.keyring(), j, Body{Kind::HEART, "", {update.id}});

  SECTION("the owner reads everything in timeline order") {
    auto read = readJournal(*owner.store, owner.keyring(), j);
    REQUIRE(read.size() == 5);
    for (size_t i = 1; i < read.size(); ++i) {
      const Entry& a = read[i - 1].entry;
      const Entry& b = read[i].entry;
      CHECK((a.timestampMs < b.timestampMs || (a.timestampMs == b.timestampMs && a.id < b.id)));
    }
    std::map<EntryId, Body> bodies;
    for (const ReadEntry& r : read) {
      if (r.entry.control.type == Control::Type::ADD_MEMBER) {
        CHECK_FALSE(r.body.has_value());  // a control entry without content
      } else {
        REQUIRE(r.body.has_value());
        bodies[r.entry.id] = *r.body;
      }
    }
    CHECK(bodies.at(update.id).kind == Kind::UPDATE);
    CHECK(bodies.at(update.id).text == sentence);
    CHECK(bodies.at(comment.id).kind == Kind::COMMENT);
    CHECK(bodies.at(comment.id).refs == std::vector<EntryId>{update.id});
    CHECK(bodies.at(heart.id).kind == Kind::HEART);
    CHECK(bodies.at(heart.id).text.empty());
    CHECK(journalTitle(*owner.store, owner.keyring(), j) == title);
  }
  SECTION("a node without the key sees the entries and no body") {
    replicate(owner, outsider, j);
    auto read = readJournal(*outsider.store, outsider.keyring(), j);
    REQUIRE(read.size() == 5);
    for (const ReadEntry& r : read) CHECK_FALSE(r.body.has_value());
    CHECK_FALSE(journalTitle(*outsider.store, outsider.keyring(), j).has_value());
    Error err = errorOf([&] { post(*outsider.store, outsider.keyring(), j, Body{Kind::COMMENT, "hi", {}}); });
    CHECK(std::string(kindName(err.kind())) == "AUTH");
  }
  SECTION("a subscriber comments but does not post updates") {
    replicate(owner, sub, j);
    CHECK(journalTitle(*sub.store, sub.keyring(), j) == title);
    Error err = errorOf([&] { post(*sub.store, sub.keyring(), j, Body{Kind::UPDATE, "not mine to post", {}}); });
    CHECK(std::string(kindName(err.kind())) == "AUTH");
    CHECK_THAT(err.hint(), Catch::Matchers::Contains("owner"));
    Entry mine = post(*sub.store, sub.keyring(), j, Body{Kind::COMMENT, "Sending love", {update.id}});
    CHECK(owner.store->append(mine, nullptr) == AppendStatus::ADDED);
    auto seen = bodyOf(owner, j, mine);
    REQUIRE(seen.has_value());
    REQUIRE(seen->has_value());
    CHECK((*seen)->text == "Sending love");
  }
  SECTION("a member's node that never took in its key cannot post") {
    replicate(owner, sub, j, /*withKeyring=*/false);
    CHECK_FALSE(sub.store->epochKey(j, 0, sub.storageKey.view()).has_value());
    Error err = errorOf([&] { post(*sub.store, sub.keyring(), j, Body{Kind::COMMENT, "no key", {}}); });
    CHECK(std::string(kindName(err.kind())) == "NOT_FOUND");
  }
  SECTION("a body sealed under the wrong key reads as unreadable, not as an error") {
    replicate(owner, sub, j);
    EntryDraft d;
    d.journal = j;
    d.seq = 1;
    d.timestampMs = nowMs();
    d.body = Body{Kind::COMMENT, "garbled", {}};
    Bytes wrongKey(crypto::AEAD_KEY_BYTES, 7);
    Entry garbled = protocol::signEntry(sub.identity, d, ByteView(wrongKey));
    CHECK(owner.store->append(garbled, nullptr) == AppendStatus::ADDED);
    auto seen = bodyOf(owner, j, garbled);
    REQUIRE(seen.has_value());
    CHECK_FALSE(seen->has_value());
  }
  SECTION("errors") {
    size_t before = owner.store->changeCounter();
    JournalId unknown{};
    unknown[31] = 9;
    Error err = errorOf([&] { readJournal(*owner.store, owner.keyring(), unknown); });
    CHECK(std::string(kindName(err.kind())) == "NOT_FOUND");
    CHECK_FALSE(err.hint().empty());
    CHECK_FALSE(journalTitle(*owner.store, owner.keyring(), unknown).has_value());
    err = errorOf([&] { post(*owner.store, owner.keyring(), unknown, Body{Kind::UPDATE, "x", {}}); });
    CHECK(std::string(kindName(err.kind())) == "NOT_FOUND");
    // Over the text limit: refused before anything is written.
    try {
      post(*owner.store, owner.keyring(), j, Body{Kind::UPDATE, std::string(protocol::TEXT_BYTES_MAX + 1, 'x'), {}});
      FAIL("an oversized text was posted");
    } catch (const EntryError& e) {
      CHECK(e.reason() == Rejection::TOO_LARGE);
      CHECK(e.kind() == ErrorKind::INPUT);
    }
    CHECK(owner.store->changeCounter() == before);
    CHECK(owner.store->head(j, owner.key())->id == heart.id);
  }

  // Whatever the section did: no node's files hold the sentence or the title in the clear.
  for (Node* n : {&owner, &sub, &outsider}) {
    n->store.reset();
    INFO(n->name);
    CHECK_FALSE(test::anyFileContains(n->dir.path(), sentence));
    CHECK_FALSE(test::anyFileContains(n->dir.path(), title));
    CHECK_FALSE(test::anyFileContains(n->dir.path(), "Thank you all"));
  }
  // The search does find what is stored as it is: the journal id.
  CHECK(test::anyFileContains(owner.dir.path(), asString(j)));
}

}  // namespace
