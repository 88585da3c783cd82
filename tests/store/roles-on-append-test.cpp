// The rules of protocol/roles.h as the store applies them on ingest: an entry's kind against its
// author's role, and a removed member's entries. Entries are built with protocol::signEntry by each member's own
// identity, as their nodes would, and appended to other nodes' stores as replication would: a member's store (which
// holds the epoch key and so sees the kind) and a relay-like store (which does not, and checks only what is in the
// clear).
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "protocol/entry.h"
#include "store/journal.h"
#include "store/store.h"
#include "tests/store/store-fixture.h"
#include "tests/support/temp-dir.h"

namespace {

using namespace kith;
using namespace kith::store;
using kith::store::testing::Household;
using kith::store::testing::replicate;
using protocol::Body;
using protocol::EntryDraft;
using protocol::EntryError;
using protocol::Kind;
using protocol::Rejection;
using protocol::Role;
using test::TempDir;

// The author's next entry in journal `j` as held by `at`, with `body` encrypted under `epochKey`.
Entry nextEntry(const Household& author, const Store& at, const JournalId& j, const Body& body, ByteView epochKey) {
  auto head = at.head(j, author.key());
  auto info = at.journal(j);
  REQUIRE(info.has_value());
  EntryDraft d;
  d.journal = j;
  d.seq = head ? head->seq + 1 : 1;
  if (head) d.prev = head->id;
  d.timestampMs = nowMs();
  d.epoch = info->epoch;
  d.body = body;
  return protocol::signEntry(author.identity, d, epochKey);
}

// The rejection `append` gives; fails the test when the entry is accepted. The store must be
// unchanged by a refusal.
Rejection refusal(Store& store, const Entry& e, const Keyring* keyring) {
  auto before = store.versionVector(e.journal);
  try {
    store.append(e, keyring);
  } catch (const EntryError& err) {
    INFO(err.what());
    REQUIRE_FALSE(std::string(err.what()).empty());
    REQUIRE(store.versionVector(e.journal) == before);
    REQUIRE_FALSE(store.entryById(e.id).has_value());
    return err.reason();
  }
  FAIL("the entry was accepted");
  return Rejection::MALFORMED;
}

void requireAdded(Store& store, const Entry& e, const Keyring* keyring) {
  REQUIRE(store.append(e, keyring) == AppendStatus::ADDED);
  REQUIRE(store.entryById(e.id).has_value());
}

// A journal with an owner, a subscriber and a co-author; each member's node holds the journal
// (with the keys wrapped to it), and a relay-like node holds it without any key.
struct Circle {
  Household owner, subscriber, coauthor, relay;
  JournalId journal{};
  Entry firstUpdate;

  Circle() {
    journal = createJournal(*owner.store, owner.keyring(), "Mum's journal");
    addMember(*owner.store, owner.keyring(), journal, subscriber.key(), Role::SUBSCRIBER);
    addMember(*owner.store, owner.keyring(), journal, coauthor.key(), Role::COAUTHOR);
    firstUpdate = post(*owner.store, owner.keyring(), journal, Body{Kind::UPDATE, "Surgery went well.", {}});
    replicate(owner, subscriber, journal, true);
    replicate(owner, coauthor, journal, true);
    replicate(owner, relay, journal, false);
  }

  crypto::SecretBuffer epochKey(uint32_t epoch) const {
    auto k = owner.store->epochKey(journal, epoch, owner.storageKey.view());
    REQUIRE(k.has_value());
    return std::move(*k);
  }
};

}  // namespace

// ---- Kinds against roles, on ingest ----------------------------------------------------------------

TEST_CASE("a subscriber's UPDATE is refused UNAUTHORISED by a member's store, which holds the epoch key",
          "[store][invite][roles]") {
  Circle c;
  auto key = c.epochKey(0);
  Body update{Kind::UPDATE, "I am not allowed to post this.", {}};
  Keyring ownerRing = c.owner.keyring();
  Entry e = nextEntry(c.subscriber, *c.owner.store, c.journal, update, key.view());
  REQUIRE(refusal(*c.owner.store, e, &ownerRing) == Rejection::UNAUTHORISED);
  Keyring coauthorRing = c.coauthor.keyring();
  REQUIRE(refusal(*c.coauthor.store, e, &coauthorRing) == Rejection::UNAUTHORISED);
  // store::post refuses to make it in the first place.
  try {
    post(*c.subscriber.store, c.subscriber.keyring(), c.journal, update);
    FAIL("a subscriber posted an update");
  } catch (const Error& err) { REQUIRE(err.kind() == ErrorKind::AUTH); }
}

TEST_CASE("a subscriber's UPDATE is accepted by a relay-like store, which cannot see the kind without the epoch key",
          "[store][invite][roles]") {
  Circle c;
  auto key = c.epochKey(0);
  Entry e = nextEntry(c.subscriber, *c.relay.store, c.journal, Body{Kind::UPDATE, "Relayed blindly.", {}}, key.view());
  // Without a keyring, and with a keyring that holds no key for the journal: both only check
  // what is in the clear (the author is a member, the chain, the epoch).
  requireAdded(*c.relay.store, e, nullptr);
  Household keyless;
  replicate(c.owner, keyless, c.journal, false);
  Keyring keylessRing = keyless.keyring();
  requireAdded(*keyless.store, e, &keylessRing);
  // The members' nodes, which can read it, still refuse it when the relay forwards it.
  Keyring ownerRing = c.owner.keyring();
  REQUIRE(refusal(*c.owner.store, e, &ownerRing) == Rejection::UNAUTHORISED);
}

TEST_CASE("a co-author's UPDATE, and a subscriber's COMMENT and HEART, are accepted by a member's store",
          "[store][invite][roles]") {
  Circle c;
  auto key = c.epochKey(0);
  Keyring ownerRing = c.owner.keyring();
  Entry update =
      nextEntry(c.coauthor, *c.owner.store, c.journal, Body{Kind::UPDATE, "Co-author's update.", {}}, key.view());
  requireAdded(*c.owner.store, update, &ownerRing);
  Entry comment = nextEntry(c.subscriber, *c.owner.store, c.journal,
                            Body{Kind::COMMENT, "Thinking of you.", {c.firstUpdate.id}}, key.view());
  requireAdded(*c.owner.store, comment, &ownerRing);
  Entry heart =
      nextEntry(c.subscriber, *c.owner.store, c.journal, Body{Kind::HEART, "", {c.firstUpdate.id}}, key.view());
  requireAdded(*c.owner.store, heart, &ownerRing);
  // A comment on a comment is a comment too.
  Entry reply =
      nextEntry(c.coauthor, *c.owner.store, c.journal, Body{Kind::COMMENT, "Same here.", {comment.id}}, key.view());
  requireAdded(*c.owner.store, reply, &ownerRing);

  auto read = readJournal(*c.owner.store, ownerRing, c.journal);
  std::map<EntryId, Kind> kinds;
  for (const auto& r : read) {
    if (r.body) kinds[r.entry.id] = r.body->kind;
  }
  REQUIRE(kinds.at(update.id) == Kind::UPDATE);
  REQUIRE(kinds.at(comment.id) == Kind::COMMENT);
  REQUIRE(kinds.at(heart.id) == Kind::HEART);
}

TEST_CASE("a COMMENT or HEART that refers to nothing is refused MALFORMED", "[store][invite][roles]") {
  Circle c;
  auto key = c.epochKey(0);
  Keyring ownerRing = c.owner.keyring();
  for (Kind kind : {Kind::COMMENT, Kind::HEART}) {
    INFO(protocol::kindName(kind));
    Entry e = nextEntry(c.subscriber, *c.owner.store, c.journal, Body{kind, "To nobody.", {}}, key.view());
    REQUIRE(refusal(*c.owner.store, e, &ownerRing) == Rejection::MALFORMED);
    Entry byOwner = nextEntry(c.owner, *c.owner.store, c.journal, Body{kind, "To nobody.", {}}, key.view());
    REQUIRE(refusal(*c.owner.store, byOwner, &ownerRing) == Rejection::MALFORMED);
  }
}

TEST_CASE("a JOURNAL_INFO by anyone but the owner is refused UNAUTHORISED", "[store][invite][roles]") {
  Circle c;
  auto key = c.epochKey(0);
  Keyring subscriberRing = c.subscriber.keyring();
  for (const Household* who : {&c.coauthor, &c.subscriber}) {
    Entry e = nextEntry(*who, *c.subscriber.store, c.journal, Body{Kind::JOURNAL_INFO, "A new title", {}}, key.view());
    REQUIRE(refusal(*c.subscriber.store, e, &subscriberRing) == Rejection::UNAUTHORISED);
  }
  Keyring ownerRing = c.owner.keyring();
  Entry retitle =
      nextEntry(c.owner, *c.owner.store, c.journal, Body{Kind::JOURNAL_INFO, "Mum's journal (2)", {}}, key.view());
  requireAdded(*c.owner.store, retitle, &ownerRing);
  requireAdded(*c.subscriber.store, retitle, &subscriberRing);
}

TEST_CASE("a removed member's entries are refused UNAUTHORISED, by members and relays alike",
          "[store][invite][roles]") {
  Circle c;
  auto key0 = c.epochKey(0);
  removeMember(*c.owner.store, c.owner.keyring(), c.journal, c.subscriber.key());
  replicate(c.owner, c.coauthor, c.journal, true);
  replicate(c.owner, c.relay, c.journal, false);
  // Signed as the removed member's node would, under the only key it has (the old epoch's), and
  // under the current epoch number (a key it does not have: it tries anyway).
  Keyring ownerRing = c.owner.keyring();
  Keyring coauthorRing = c.coauthor.keyring();
  Entry comment = nextEntry(c.subscriber, *c.owner.store, c.journal,
                            Body{Kind::COMMENT, "Still here?", {c.firstUpdate.id}}, key0.view());
  REQUIRE(comment.epoch == 1);
  REQUIRE(refusal(*c.owner.store, comment, &ownerRing) == Rejection::UNAUTHORISED);
  REQUIRE(refusal(*c.coauthor.store, comment, &coauthorRing) == Rejection::UNAUTHORISED);
  REQUIRE(refusal(*c.relay.store, comment, nullptr) == Rejection::UNAUTHORISED);
  EntryDraft old;
  old.journal = c.journal;
  old.seq = 1;
  old.timestampMs = nowMs();
  old.epoch = 0;
  old.body = Body{Kind::HEART, "", {c.firstUpdate.id}};
  Entry oldEpoch = protocol::signEntry(c.subscriber.identity, old, key0.view());
  REQUIRE(refusal(*c.owner.store, oldEpoch, &ownerRing) == Rejection::UNAUTHORISED);
  REQUIRE(refusal(*c.relay.store, oldEpoch, nullptr) == Rejection::UNAUTHORISED);
}

TEST_CASE("after removeMember, the removed member's store never gets the new epoch's key and opens no new body",
          "[store][invite][roles]") {
  Circle c;
  Entry removal = removeMember(*c.owner.store, c.owner.keyring(), c.journal, c.subscriber.key());
  REQUIRE(removal.control.newEpoch == 1);
  const std::string afterText = "After revocation: only the remaining circle can read this.";
  Entry after = post(*c.owner.store, c.owner.keyring(), c.journal, Body{Kind::UPDATE, afterText, {}});
  REQUIRE(after.epoch == 1);
  // The removed member's node receives every entry (a relay or a careless peer could forward them).
  replicate(c.owner, c.subscriber, c.journal, true);
  replicate(c.owner, c.coauthor, c.journal, true);

  const Store& removed = *c.subscriber.store;
  REQUIRE(removed.journal(c.journal)->epoch == 1);
  REQUIRE(removed.epochKey(c.journal, 0, c.subscriber.storageKey.view()).has_value());
  REQUIRE_FALSE(removed.epochKey(c.journal, 1, c.subscriber.storageKey.view()).has_value());
  for (const auto& w : removal.control.wraps) REQUIRE(w.member != c.subscriber.key());

  // Every key the removed member holds: each epoch key its store has, and its own secrets.
  std::vector<Bytes> keys;
  for (uint32_t epoch = 0; epoch <= removed.journal(c.journal)->epoch + 1; ++epoch) {
    if (auto k = removed.epochKey(c.journal, epoch, c.subscriber.storageKey.view())) {
      keys.emplace_back(k->view().begin(), k->view().end());
    }
  }
  REQUIRE(keys.size() == 1);
  keys.emplace_back(c.subscriber.storageKey.view().begin(), c.subscriber.storageKey.view().end());
  keys.emplace_back(c.subscriber.identity.seed().begin(), c.subscriber.identity.seed().end());
  keys.emplace_back(c.subscriber.identity.boxSecret().begin(), c.subscriber.identity.boxSecret().end());
  auto stored = removed.entryById(after.id);
  REQUIRE(stored.has_value());
  for (const Bytes& k : keys) REQUIRE_FALSE(protocol::openBody(*stored, k).has_value());
  // Its own read shows the entry as unreadable, and the text is nowhere in its files.
  for (const auto& r : readJournal(removed, c.subscriber.keyring(), c.journal)) {
    if (r.entry.id == after.id) REQUIRE_FALSE(r.body.has_value());
    if (r.entry.id == c.firstUpdate.id) REQUIRE(r.body.has_value());  // what it had stays readable
  }
  c.subscriber.store.reset();
  REQUIRE_FALSE(test::anyFileContains(c.subscriber.dir.path(), afterText));

  // The remaining co-author got the new key and reads it.
  auto newKey = c.coauthor.store->epochKey(c.journal, 1, c.coauthor.storageKey.view());
  REQUIRE(newKey.has_value());
  auto body = protocol::openBody(*c.coauthor.store->entryById(after.id), newKey->view());
  REQUIRE(body.has_value());
  REQUIRE(body->text == afterText);
}
