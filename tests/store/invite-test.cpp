// Circles in the store: invitations (open, used, expired, unknown, cancelled; only the secret's
// hash on disk), and the rules that tie an entry's kind to its author's role on ingest. Entries are
// built with protocol::signEntry by each member's own identity, as their nodes would, and appended
// to other nodes' stores as replication would: a member's store (which holds the epoch key and so
// sees the kind) and a relay-like store (which does not, and checks only what is in the clear).
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "protocol/entry.h"
#include "protocol/invite.h"
#include "store/journal.h"
#include "store/store.h"
#include "tests/support/temp-dir.h"

namespace {

using namespace kith;
using namespace kith::store;
using protocol::Body;
using protocol::EntryDraft;
using protocol::EntryError;
using protocol::Kind;
using protocol::Rejection;
using protocol::Role;
using test::TempDir;

constexpr int64_t T0_MS = 1717171717000;  // a fixed "now" for the invite clock
constexpr int64_t DAY_MS = 24 * 3600 * 1000;

// One person's node: an identity, its at-rest key, and a store in a temporary directory.
struct Household {
  Household()
      : identity(crypto::Identity::generate()),
        storageKey(identity.deriveKey("kithstor", 1)),
        store(Store::open(dir.path())) {}
  Household(const Household&) = delete;
  Household& operator=(const Household&) = delete;

  Keyring keyring() const { return Keyring{identity, storageKey.view()}; }
  const PublicKey& key() const { return identity.publicKey(); }
  void reopen() {
    store.reset();
    store = Store::open(dir.path());
  }

  TempDir dir;
  crypto::Identity identity;
  crypto::SecretBuffer storageKey;
  std::unique_ptr<Store> store;
};

Invite makeInvite(uint8_t idByte, const JournalId& journal, Role role, int64_t createdMs, int64_t expiresMs) {
  Invite i;
  i.id.fill(idByte);
  i.journal = journal;
  i.role = role;
  i.createdMs = createdMs;
  i.expiresMs = expiresMs;
  return i;
}

void requireSameInvite(const Invite& a, const Invite& b) {
  REQUIRE(a.id == b.id);
  REQUIRE(a.journal == b.journal);
  REQUIRE(a.role == b.role);
  REQUIRE(a.createdMs == b.createdMs);
  REQUIRE(a.expiresMs == b.expiresMs);
  REQUIRE(a.used == b.used);
  REQUIRE(a.usedBy == b.usedBy);
}

// The store's invites compared with a simple model: the same set, field for field.
void requireMatchesModel(const Store& store, const std::map<Key32, Invite>& model) {
  std::vector<Invite> stored = store.invites();
  REQUIRE(stored.size() == model.size());
  for (const Invite& i : stored) {
    auto it = model.find(i.id);
    REQUIRE(it != model.end());
    requireSameInvite(i, it->second);
  }
}

// Appends to `to` every entry of the journal that `from` holds, in timeline order, with `to`'s
// keyring (a member's node) or without one (a relay-like node). Entries that arrive before the one
// they follow are retried.
void replicate(const Household& from, Household& to, const JournalId& j, bool withKeyring) {
  std::vector<Entry> pending = from.store->timeline(j);
  Keyring kr = to.keyring();
  while (!pending.empty()) {
    auto outcomes = to.store->appendBatch(pending, withKeyring ? &kr : nullptr);
    std::vector<Entry> again;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (outcomes[i].status == AppendStatus::REJECTED) {
        INFO(outcomes[i].message);
        REQUIRE(outcomes[i].reason == Rejection::BROKEN_CHAIN);
        again.push_back(pending[i]);
      }
    }
    REQUIRE(again.size() < pending.size());
    pending = std::move(again);
  }
  REQUIRE(to.store->versionVector(j) == from.store->versionVector(j));
}

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

// ---- Invitations ----------------------------------------------------------------------------------

TEST_CASE("invites: an unknown id is UNKNOWN - a stored one is OPEN until it expires, then EXPIRED", "[store][invite]") {
  Household home;
  JournalId j{};
  j.fill(0x33);
  Key32 unknown{};
  unknown.fill(0x99);
  REQUIRE(home.store->checkInvite(unknown, T0_MS).first == InviteStatus::UNKNOWN);
  REQUIRE_FALSE(home.store->checkInvite(unknown, T0_MS).second.has_value());
  REQUIRE(home.store->invites().empty());

  Invite invite = makeInvite(0x01, j, Role::COAUTHOR, T0_MS, T0_MS + DAY_MS);
  home.store->putInvite(invite);
  auto [status, found] = home.store->checkInvite(invite.id, T0_MS);
  REQUIRE(status == InviteStatus::OPEN);
  REQUIRE(found.has_value());
  requireSameInvite(*found, invite);
  REQUIRE(home.store->checkInvite(invite.id, T0_MS + DAY_MS - 1).first == InviteStatus::OPEN);
  // Expiry is exclusive: at expiresMs the invite is no longer usable.
  REQUIRE(home.store->checkInvite(invite.id, T0_MS + DAY_MS).first == InviteStatus::EXPIRED);
  auto late = home.store->checkInvite(invite.id, T0_MS + 2 * DAY_MS);
  REQUIRE(late.first == InviteStatus::EXPIRED);
  REQUIRE(late.second.has_value());
  requireSameInvite(*late.second, invite);
  REQUIRE(home.store->checkInvite(unknown, T0_MS).first == InviteStatus::UNKNOWN);

  // Invites persist.
  home.reopen();
  REQUIRE(home.store->checkInvite(invite.id, T0_MS).first == InviteStatus::OPEN);
  requireSameInvite(home.store->invites().at(0), invite);
}

TEST_CASE("invites: markInviteUsed makes it USED by that key, even before and after expiry", "[store][invite]") {
  Household home;
  JournalId j{};
  j.fill(0x33);
  std::map<Key32, Invite> model;
  for (uint8_t b = 1; b <= 3; ++b) {
    Invite i = makeInvite(b, j, Role::SUBSCRIBER, T0_MS, T0_MS + DAY_MS);
    home.store->putInvite(i);
    model[i.id] = i;
  }
  PublicKey friendKey{};
  friendKey.fill(0xf1);
  Key32 used = model.begin()->first;
  home.store->markInviteUsed(used, friendKey);
  model[used].used = true;
  model[used].usedBy = friendKey;
  requireMatchesModel(*home.store, model);

  auto [status, found] = home.store->checkInvite(used, T0_MS);
  REQUIRE(status == InviteStatus::USED);
  REQUIRE(found.has_value());
  REQUIRE(found->usedBy == friendKey);
  // Used wins over expired: the owner sees who used it.
  REQUIRE(home.store->checkInvite(used, T0_MS + 2 * DAY_MS).first == InviteStatus::USED);
  // The others are untouched.
  for (const auto& [id, i] : model) {
    if (id != used) REQUIRE(home.store->checkInvite(id, T0_MS).first == InviteStatus::OPEN);
  }
  // Marking an unknown invite is a no-op, not an error, and does not create it.
  Key32 unknown{};
  unknown.fill(0x99);
  REQUIRE_NOTHROW(home.store->markInviteUsed(unknown, friendKey));
  REQUIRE(home.store->checkInvite(unknown, T0_MS).first == InviteStatus::UNKNOWN);
  requireMatchesModel(*home.store, model);
  home.reopen();
  requireMatchesModel(*home.store, model);
}

TEST_CASE("invites: cancelInvite removes only that invite, once", "[store][invite]") {
  Household home;
  JournalId j{};
  j.fill(0x33);
  std::map<Key32, Invite> model;
  for (uint8_t b = 1; b <= 4; ++b) {
    Invite i = makeInvite(b, j, b % 2 ? Role::SUBSCRIBER : Role::COAUTHOR, T0_MS, T0_MS + b * DAY_MS);
    home.store->putInvite(i);
    model[i.id] = i;
  }
  Key32 second{};
  second.fill(2);
  REQUIRE(home.store->cancelInvite(second));
  model.erase(second);
  REQUIRE(home.store->checkInvite(second, T0_MS).first == InviteStatus::UNKNOWN);
  REQUIRE_FALSE(home.store->cancelInvite(second));
  requireMatchesModel(*home.store, model);
  // A used invite can be cancelled too (tidying the list).
  Key32 first{};
  first.fill(1);
  home.store->markInviteUsed(first, PublicKey{});
  REQUIRE(home.store->cancelInvite(first));
  model.erase(first);
  requireMatchesModel(*home.store, model);
  home.reopen();
  requireMatchesModel(*home.store, model);
}

TEST_CASE("invites: hasOpenInvites follows the clock, use and cancellation", "[store][invite]") {
  Household home;
  JournalId j{};
  j.fill(0x33);
  REQUIRE_FALSE(home.store->hasOpenInvites(T0_MS));
  Invite shortLived = makeInvite(1, j, Role::SUBSCRIBER, T0_MS, T0_MS + 1000);
  Invite longLived = makeInvite(2, j, Role::SUBSCRIBER, T0_MS, T0_MS + DAY_MS);
  home.store->putInvite(shortLived);
  REQUIRE(home.store->hasOpenInvites(T0_MS));
  REQUIRE(home.store->hasOpenInvites(T0_MS + 999));
  REQUIRE_FALSE(home.store->hasOpenInvites(T0_MS + 1000));
  home.store->putInvite(longLived);
  REQUIRE(home.store->hasOpenInvites(T0_MS + 1000));
  REQUIRE_FALSE(home.store->hasOpenInvites(T0_MS + DAY_MS));
  home.store->markInviteUsed(longLived.id, PublicKey{});
  REQUIRE(home.store->hasOpenInvites(T0_MS));  // the short-lived one is still open now
  REQUIRE_FALSE(home.store->hasOpenInvites(T0_MS + 1000));
  REQUIRE(home.store->cancelInvite(shortLived.id));
  REQUIRE_FALSE(home.store->hasOpenInvites(T0_MS));
}

TEST_CASE("invites: only the secret's hash is stored, never the secret", "[store][invite]") {
  Household home;
  JournalId j{};
  j.fill(0x33);
  // As `kith invite` does: a random secret for the code, its hash as the invite's id.
  Bytes secret(protocol::INVITE_SECRET_BYTES);
  crypto::randomBytes(secret);
  Invite invite = makeInvite(0, j, Role::SUBSCRIBER, T0_MS, T0_MS + DAY_MS);
  invite.id = protocol::inviteId(secret);
  home.store->putInvite(invite);
  REQUIRE(home.store->checkInvite(protocol::inviteId(secret), T0_MS).first == InviteStatus::OPEN);
  home.store.reset();  // closed: everything is in data.mdb

  std::string secretText(asChars(secret));
  std::string idText(asChars(invite.id));
  REQUIRE(test::anyFileContains(home.dir.path(), idText));  // the grep does find what is there
  REQUIRE_FALSE(test::anyFileContains(home.dir.path(), secretText));
}

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
  } catch (const Error& err) {
    REQUIRE(err.kind() == ErrorKind::AUTH);
  }
}

TEST_CASE("a subscriber's UPDATE is accepted by a relay-like store without the epoch key: it cannot see the kind",
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
  Entry update = nextEntry(c.coauthor, *c.owner.store, c.journal, Body{Kind::UPDATE, "Co-author's update.", {}}, key.view());
  requireAdded(*c.owner.store, update, &ownerRing);
  Entry comment = nextEntry(c.subscriber, *c.owner.store, c.journal,
                            Body{Kind::COMMENT, "Thinking of you.", {c.firstUpdate.id}}, key.view());
  requireAdded(*c.owner.store, comment, &ownerRing);
  Entry heart = nextEntry(c.subscriber, *c.owner.store, c.journal, Body{Kind::HEART, "", {c.firstUpdate.id}}, key.view());
  requireAdded(*c.owner.store, heart, &ownerRing);
  // A comment on a comment is a comment too.
  Entry reply = nextEntry(c.coauthor, *c.owner.store, c.journal, Body{Kind::COMMENT, "Same here.", {comment.id}}, key.view());
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
  Entry retitle = nextEntry(c.owner, *c.owner.store, c.journal, Body{Kind::JOURNAL_INFO, "Mum's journal (2)", {}}, key.view());
  requireAdded(*c.owner.store, retitle, &ownerRing);
  requireAdded(*c.subscriber.store, retitle, &subscriberRing);
}

TEST_CASE("a removed member's entries are refused UNAUTHORISED, by members and relays alike", "[store][invite][roles]") {
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
