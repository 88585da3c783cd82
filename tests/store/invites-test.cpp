// Invitations in the store (store/invites.h): open, used, expired, unknown, cancelled; only the
// secret's hash on disk; and redeeming one (Store::redeemInvite) in one write transaction.
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
#include "tests/store/store-fixture.h"
#include "tests/support/errors.h"
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

constexpr int64_t T0_MS = 1717171717000;  // a fixed "now" for the invite clock
constexpr int64_t DAY_MS = 24 * 3600 * 1000;

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

}  // namespace

// ---- Invitations ----------------------------------------------------------------------------------

TEST_CASE("invites: an unknown id is UNKNOWN - a stored one is OPEN until it expires, then EXPIRED",
          "[store][invite]") {
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

// ---- Redeeming ------------------------------------------------------------------------------------

TEST_CASE("redeemInvite adds the member with the invite's role, with every key, and marks it used, in one step",
          "[store][invite]") {
  Household owner, friendHome;
  JournalId j = createJournal(*owner.store, owner.keyring(), "Mum's journal");
  Invite invite = makeInvite(0x01, j, Role::COAUTHOR, T0_MS, T0_MS + DAY_MS);
  owner.store->putInvite(invite);
  size_t before = owner.store->changeCounter();

  Redemption r = owner.store->redeemInvite(invite.id, friendHome.key(), T0_MS + 1, owner.keyring());
  REQUIRE(r.status == InviteStatus::OPEN);
  REQUIRE(r.invite.has_value());
  REQUIRE(r.invite->journal == j);
  REQUIRE(r.added.has_value());
  REQUIRE(r.added->control.type == protocol::Control::Type::ADD_MEMBER);
  REQUIRE(r.added->control.member == friendHome.key());
  REQUIRE(r.added->control.role == Role::COAUTHOR);
  REQUIRE(r.added->control.wraps.size() == 1);  // epoch 0's key
  // One write transaction did it all.
  REQUIRE(owner.store->changeCounter() == before + 1);
  auto m = owner.store->member(j, friendHome.key());
  REQUIRE(m.has_value());
  REQUIRE(m->active);
  REQUIRE(m->role == Role::COAUTHOR);
  auto [status, used] = owner.store->checkInvite(invite.id, T0_MS + 2);
  REQUIRE(status == InviteStatus::USED);
  REQUIRE(used->usedBy == friendHome.key());

  // The friend's node takes the journal in and can read it.
  replicate(owner, friendHome, j, true);
  REQUIRE(journalTitle(*friendHome.store, friendHome.keyring(), j) == "Mum's journal");

  // A second redemption is refused and writes nothing.
  size_t after = owner.store->changeCounter();
  Household other;
  Redemption again = owner.store->redeemInvite(invite.id, other.key(), T0_MS + 3, owner.keyring());
  REQUIRE(again.status == InviteStatus::USED);
  REQUIRE_FALSE(again.added.has_value());
  REQUIRE(owner.store->changeCounter() == after);
  REQUIRE_FALSE(owner.store->member(j, other.key()).has_value());
}

TEST_CASE("redeemInvite refuses an unknown or expired invite and writes nothing", "[store][invite]") {
  Household owner, friendHome;
  JournalId j = createJournal(*owner.store, owner.keyring(), "journal");
  Invite invite = makeInvite(0x02, j, Role::SUBSCRIBER, T0_MS, T0_MS + DAY_MS);
  owner.store->putInvite(invite);
  size_t before = owner.store->changeCounter();
  Key32 unknown{};
  unknown.fill(0x99);
  REQUIRE(owner.store->redeemInvite(unknown, friendHome.key(), T0_MS, owner.keyring()).status == InviteStatus::UNKNOWN);
  Redemption late = owner.store->redeemInvite(invite.id, friendHome.key(), T0_MS + DAY_MS, owner.keyring());
  REQUIRE(late.status == InviteStatus::EXPIRED);
  REQUIRE_FALSE(late.added.has_value());
  REQUIRE(owner.store->changeCounter() == before);
  REQUIRE_FALSE(owner.store->member(j, friendHome.key()).has_value());
  REQUIRE(owner.store->checkInvite(invite.id, T0_MS).first == InviteStatus::OPEN);
}

TEST_CASE("redeemInvite by an active member only marks the invite used, and one that cannot add leaves it open",
          "[store][invite]") {
  Household owner, member, stranger;
  JournalId j = createJournal(*owner.store, owner.keyring(), "journal");
  addMember(*owner.store, owner.keyring(), j, member.key(), Role::SUBSCRIBER);
  Invite invite = makeInvite(0x03, j, Role::COAUTHOR, T0_MS, T0_MS + DAY_MS);
  owner.store->putInvite(invite);
  auto heads = owner.store->versionVector(j);
  Redemption r = owner.store->redeemInvite(invite.id, member.key(), T0_MS, owner.keyring());
  REQUIRE(r.status == InviteStatus::OPEN);
  REQUIRE_FALSE(r.added.has_value());
  REQUIRE(owner.store->versionVector(j) == heads);
  REQUIRE(owner.store->member(j, member.key())->role == Role::SUBSCRIBER);
  REQUIRE(owner.store->checkInvite(invite.id, T0_MS).first == InviteStatus::USED);

  // An invite to a journal whose owner is not this keyring cannot add anyone: the error
  // propagates and the invite stays open (the same transaction would have marked it).
  Invite foreign = makeInvite(0x04, j, Role::SUBSCRIBER, T0_MS, T0_MS + DAY_MS);
  owner.store->putInvite(foreign);
  size_t before = owner.store->changeCounter();
  Error err = test::errorOf([&] { owner.store->redeemInvite(foreign.id, stranger.key(), T0_MS, member.keyring()); });
  REQUIRE(err.kind() == ErrorKind::AUTH);
  REQUIRE(owner.store->changeCounter() == before);
  REQUIRE(owner.store->checkInvite(foreign.id, T0_MS).first == InviteStatus::OPEN);
  REQUIRE_FALSE(owner.store->member(j, stranger.key()).has_value());
}

TEST_CASE("redeemInvite refuses a used invite and an expired one while another invite of the journal is open",
          "[store][invite]") {
  Household owner, first, second, third, fourth;
  JournalId j = createJournal(*owner.store, owner.keyring(), "journal");
  Invite open = makeInvite(0x11, j, Role::SUBSCRIBER, T0_MS, T0_MS + 7 * DAY_MS);
  Invite once = makeInvite(0x12, j, Role::COAUTHOR, T0_MS, T0_MS + 7 * DAY_MS);
  Invite expired = makeInvite(0x13, j, Role::COAUTHOR, T0_MS - 2 * DAY_MS, T0_MS - DAY_MS);
  for (const Invite& i : {open, once, expired}) owner.store->putInvite(i);
  REQUIRE(owner.store->redeemInvite(once.id, first.key(), T0_MS, owner.keyring()).added.has_value());
  REQUIRE(owner.store->hasOpenInvites(T0_MS));

  auto heads = owner.store->versionVector(j);
  size_t before = owner.store->changeCounter();
  Redemption used = owner.store->redeemInvite(once.id, second.key(), T0_MS + 1, owner.keyring());
  CHECK(used.status == InviteStatus::USED);
  CHECK_FALSE(used.added.has_value());
  Redemption late = owner.store->redeemInvite(expired.id, third.key(), T0_MS + 1, owner.keyring());
  CHECK(late.status == InviteStatus::EXPIRED);
  CHECK_FALSE(late.added.has_value());
  // Refused: no member added, nothing written, and the used invite still names its first user.
  CHECK(owner.store->changeCounter() == before);
  CHECK(owner.store->versionVector(j) == heads);
  CHECK_FALSE(owner.store->member(j, second.key()).has_value());
  CHECK_FALSE(owner.store->member(j, third.key()).has_value());
  CHECK(owner.store->checkInvite(once.id, T0_MS + 1).second->usedBy == first.key());
  // The open one still works.
  Redemption ok = owner.store->redeemInvite(open.id, fourth.key(), T0_MS + 2, owner.keyring());
  CHECK(ok.status == InviteStatus::OPEN);
  CHECK(owner.store->member(j, fourth.key())->role == Role::SUBSCRIBER);
}

TEST_CASE("invites: a short code's label, slot and password round-trip - wrong tries burn it, a proven one is forgiven",
          "[store][invite]") {
  Household home;
  JournalId j{};
  j.fill(0x44);
  Invite invite = makeInvite(0x05, j, Role::SUBSCRIBER, T0_MS, T0_MS + DAY_MS);
  invite.label = "Aunt May";
  invite.hasShort = true;
  invite.slot = 200;
  invite.password = Bytes{1, 2, 3, 4};
  invite.secret = Bytes(protocol::INVITE_SECRET_BYTES, 0x5a);
  home.store->putInvite(invite);
  Invite plain = makeInvite(0x06, j, Role::SUBSCRIBER, T0_MS, T0_MS + DAY_MS);
  home.store->putInvite(plain);

  auto [status, found] = home.store->checkShortInvite(200, T0_MS);
  REQUIRE(status == InviteStatus::OPEN);
  REQUIRE(found);
  CHECK(found->id == invite.id);
  CHECK(found->label == "Aunt May");
  CHECK(found->password == invite.password);
  CHECK(found->secret == invite.secret);
  CHECK(home.store->checkShortInvite(199, T0_MS).first == InviteStatus::UNKNOWN);

  // A proven try is taken back; wrong ones add up to the limit, and then the invite is burnt.
  REQUIRE(home.store->countShortTry(invite.id, T0_MS) == std::optional<uint8_t>(1));
  home.store->forgiveShortTry(invite.id);
  for (uint8_t t = 1; t <= protocol::INVITE_SHORT_TRIES_MAX; ++t) {
    REQUIRE(home.store->checkInvite(invite.id, T0_MS).first == InviteStatus::OPEN);
    REQUIRE(home.store->countShortTry(invite.id, T0_MS) == std::optional<uint8_t>(t));
  }
  CHECK(home.store->checkInvite(invite.id, T0_MS).first == InviteStatus::BURNT);
  CHECK(home.store->checkShortInvite(200, T0_MS).first == InviteStatus::BURNT);
  CHECK_FALSE(home.store->countShortTry(invite.id, T0_MS).has_value());
  auto burnt = home.store->checkInvite(invite.id, T0_MS).second;
  REQUIRE(burnt);
  CHECK(burnt->label == "Aunt May");
  // The last try in flight proves the password: forgiven, the invite is open again.
  home.store->forgiveShortTry(invite.id);
  CHECK(home.store->checkInvite(invite.id, T0_MS).first == InviteStatus::OPEN);
  REQUIRE(home.store->countShortTry(invite.id, T0_MS) == std::optional<uint8_t>(3));
  CHECK(home.store->checkInvite(invite.id, T0_MS).first == InviteStatus::BURNT);
  // The plain invite is untouched, and still lets strangers past the handshake.
  CHECK(home.store->checkInvite(plain.id, T0_MS).first == InviteStatus::OPEN);
  CHECK(home.store->hasOpenInvites(T0_MS));
  CHECK(home.store->cancelInvite(plain.id));
  CHECK_FALSE(home.store->hasOpenInvites(T0_MS));
}
