// Relays, the members' cryptography (protocol/relay.h): mailbox keys that differ per journal,
// epoch and relay and reveal nothing of the journal; envelopes padded to the buckets, the same
// bytes for the same entry, refused under another key or when tampered with; proofs bound to the
// action, the relay and the connection; the join messages and their refusals; relays entries.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "crypto/aead.h"
#include "crypto/hash.h"
#include "protocol/invite.h"
#include "protocol/relay.h"
#include "protocol/roles.h"

namespace {

using namespace kith;
using namespace kith::protocol;

Bytes filled(size_t n, uint8_t b) { return Bytes(n, b); }

Key32 key32(uint8_t b) {
  Key32 k;
  k.fill(b);
  return k;
}

bool contains(ByteView haystack, ByteView needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

}  // namespace

TEST_CASE("mailbox keys differ per journal epoch and relay and are stable", "[protocol][relay]") {
  Bytes epochKey = filled(32, 7);
  JournalId journal = key32(1);
  PublicKey relayA = crypto::Identity::fromSeed(filled(32, 2)).publicKey();
  PublicKey relayB = crypto::Identity::fromSeed(filled(32, 3)).publicKey();
  MailboxKeys a = journalMailboxKeys(epochKey, journal, 0, relayA);
  MailboxKeys again = journalMailboxKeys(epochKey, journal, 0, relayA);
  REQUIRE(a.id == again.id);
  REQUIRE(a.credential.publicKey() == again.credential.publicKey());
  std::set<Key32> ids{a.id};
  ids.insert(journalMailboxKeys(epochKey, journal, 1, relayA).id);
  ids.insert(journalMailboxKeys(epochKey, journal, 0, relayB).id);
  ids.insert(journalMailboxKeys(epochKey, key32(9), 0, relayA).id);
  ids.insert(journalMailboxKeys(filled(32, 8), journal, 0, relayA).id);
  REQUIRE(ids.size() == 5);
  // Nothing the relay sees is the journal id, or a plain hash of it.
  REQUIRE(a.id != journal);
  REQUIRE(a.id != crypto::hash("kith/relay-mailbox/v1", {journal}));
  REQUIRE(a.credential.publicKey() != a.id);
  // An invite's mailbox is another one again, and differs per relay.
  REQUIRE(inviteMailboxKeys(key32(5), relayA).id != inviteMailboxKeys(key32(5), relayB).id);
}

TEST_CASE("admin keys belong to the owner and the scope", "[protocol][relay]") {
  auto owner = crypto::Identity::fromSeed(filled(32, 4));
  auto other = crypto::Identity::fromSeed(filled(32, 5));
  PublicKey relay = crypto::Identity::fromSeed(filled(32, 2)).publicKey();
  auto a = relayAdminKey(owner, key32(1), relay).publicKey();
  REQUIRE(a == relayAdminKey(owner, key32(1), relay).publicKey());
  REQUIRE(a != relayAdminKey(other, key32(1), relay).publicKey());
  REQUIRE(a != relayAdminKey(owner, key32(2), relay).publicKey());
  REQUIRE(a != owner.publicKey());
}

TEST_CASE("envelopes are padded to the buckets and open only under their key", "[protocol][relay]") {
  Bytes key = filled(32, 9);
  std::set<size_t> sizes;
  for (size_t n : {size_t{1}, size_t{100}, size_t{507}, size_t{508}, size_t{2000}, size_t{5000}, size_t{30000},
                   size_t{64 + ENTRY_BYTES_MAX}}) {
    Bytes packed = filled(n, 0x5a);
    Bytes envelope = sealEnvelope(key, packed);
    size_t plain = envelope.size() - crypto::AEAD_OVERHEAD_BYTES;
    REQUIRE(std::find(std::begin(ENVELOPE_BUCKETS), std::end(ENVELOPE_BUCKETS), plain) != std::end(ENVELOPE_BUCKETS));
    REQUIRE(plain >= n + 4);
    sizes.insert(envelope.size());
    auto opened = openEnvelope(key, envelope);
    REQUIRE(opened);
    REQUIRE(*opened == packed);
    if (n >= 16) REQUIRE_FALSE(contains(envelope, Bytes(packed.begin(), packed.begin() + 16)));
    // The same entry sealed twice is the same envelope (the relay keeps one).
    REQUIRE(sealEnvelope(key, packed) == envelope);
    REQUIRE_FALSE(openEnvelope(filled(32, 10), envelope));
    Bytes flipped = envelope;
    flipped[flipped.size() / 2] ^= 1;
    REQUIRE_FALSE(openEnvelope(key, flipped));
    Bytes cut(envelope.begin(), envelope.end() - 1);
    REQUIRE_FALSE(openEnvelope(key, cut));
  }
  REQUIRE(sizes.size() == 5);  // 1..508 in the first bucket, one size per other bucket
  REQUIRE_THROWS_AS(sealEnvelope(key, filled(64 + ENTRY_BYTES_MAX + 1, 1)), EntryError);
  REQUIRE(sealEnvelope(key, filled(100, 1)) != sealEnvelope(key, filled(100, 2)));
}

TEST_CASE("proofs name the action the relay and the connection", "[protocol][relay]") {
  PublicKey relay = key32(1), client = key32(2), otherClient = key32(3);
  Bytes subject = filled(32, 4);
  Bytes open = relayProofMessage(RelayAction::OPEN, relay, client, subject);
  REQUIRE(open != relayProofMessage(RelayAction::ROTATE, relay, client, subject));
  REQUIRE(open != relayProofMessage(RelayAction::REMOVE, relay, client, subject));
  REQUIRE(open != relayProofMessage(RelayAction::OPEN, key32(5), client, subject));
  REQUIRE(open != relayProofMessage(RelayAction::OPEN, relay, otherClient, subject));
  auto credential = crypto::Identity::fromSeed(filled(32, 6));
  auto sig = credential.sign(open);
  REQUIRE(crypto::verify(credential.publicKey(), open, sig));
  REQUIRE_FALSE(
      crypto::verify(credential.publicKey(), relayProofMessage(RelayAction::OPEN, relay, otherClient, subject), sig));
}

TEST_CASE("join requests are signed and answers round trip", "[protocol][relay]") {
  auto friendId = crypto::Identity::fromSeed(filled(32, 7));
  Bytes secret = filled(INVITE_SECRET_BYTES, 3);
  RedeemRequest request = makeRedeemRequest(friendId, secret);
  Bytes encoded = encodeRedeemRequest(request);
  auto decoded = decodeRedeemRequest(encoded);
  REQUIRE(decoded);
  REQUIRE(decoded->member == friendId.publicKey());
  REQUIRE(decoded->secret == secret);
  // Another key put in the request, or a changed secret, does not verify.
  Bytes forged = encoded;
  forged[INVITE_SECRET_BYTES] ^= 1;
  REQUIRE_FALSE(decodeRedeemRequest(forged));
  forged = encoded;
  forged[0] ^= 1;
  REQUIRE_FALSE(decodeRedeemRequest(forged));
  REQUIRE_FALSE(decodeRedeemRequest(Bytes(encoded.begin(), encoded.end() - 1)));

  RedeemAnswer ok;
  ok.member = friendId.publicKey();
  ok.ok = true;
  ok.journal = key32(8);
  ok.role = Role::COAUTHOR;
  ok.epoch = 3;
  ok.sealedEpochKey = crypto::sealTo(friendId.boxPublicKey(), filled(32, 9));
  auto back = decodeRedeemAnswer(encodeRedeemAnswer(ok));
  REQUIRE(back);
  REQUIRE(back->ok);
  REQUIRE(back->journal == ok.journal);
  REQUIRE(back->role == Role::COAUTHOR);
  REQUIRE(back->epoch == 3);
  REQUIRE(back->sealedEpochKey == ok.sealedEpochKey);
  RedeemAnswer no;
  no.member = friendId.publicKey();
  no.reason = "the invite was used";
  auto refused = decodeRedeemAnswer(encodeRedeemAnswer(no));
  REQUIRE(refused);
  REQUIRE_FALSE(refused->ok);
  REQUIRE(refused->reason == "the invite was used");
  // An answer granting the owner's role, or with a control character in its reason, is refused.
  Bytes owner = encodeRedeemAnswer(ok);
  owner[33 + 32] = static_cast<uint8_t>(Role::OWNER);
  REQUIRE_FALSE(decodeRedeemAnswer(owner));
  Bytes escape = encodeRedeemAnswer(no);
  escape.back() = 0x1b;
  REQUIRE_FALSE(decodeRedeemAnswer(escape));
  // Messages are told apart by type and open only under their key.
  Bytes key = filled(32, 1);
  Bytes sealed = sealMessage(key, MESSAGE_REDEEM_REQUEST, encoded);
  auto message = openMessage(key, sealed);
  REQUIRE(message);
  REQUIRE(message->first == MESSAGE_REDEEM_REQUEST);
  REQUIRE(message->second == encoded);
  REQUIRE_FALSE(openMessage(filled(32, 2), sealed));
}

TEST_CASE("a relays entry is the owner's and names relays only in its kind", "[protocol][relay]") {
  Body relays{Kind::RELAYS, "", {}};
  relays.relays.push_back(RelayAddress{"relay.example.org", 7500, key32(1)});
  REQUIRE_FALSE(refuseBody(Role::OWNER, relays));
  REQUIRE(refuseBody(Role::COAUTHOR, relays));
  REQUIRE(refuseBody(Role::SUBSCRIBER, relays));
  REQUIRE(std::string(kindName(Kind::RELAYS)) == "relays");
}

TEST_CASE("a relays body round trips and its limits hold", "[protocol][relay]") {
  auto owner = crypto::Identity::fromSeed(filled(32, 1));
  Bytes epochKey = filled(32, 2);
  EntryDraft d;
  d.journal = key32(3);
  d.seq = 2;
  d.prev = key32(4);
  d.timestampMs = 1;
  d.body = Body{Kind::RELAYS, "", {}};
  d.body->relays = {RelayAddress{"192.0.2.1", 7500, key32(5)}, RelayAddress{"relay.example.org", 443, key32(6)}};
  Entry e = signEntry(owner, d, epochKey);
  auto body = openBody(e, epochKey);
  REQUIRE(body);
  REQUIRE(body->kind == Kind::RELAYS);
  REQUIRE(body->relays == d.body->relays);
  // The relays are inside the encrypted body: nothing of them is in the clear.
  REQUIRE_FALSE(contains(e.bytes, asBytes("relay.example.org")));

  auto refused = [&](const Body& b) {
    EntryDraft bad = d;
    bad.body = b;
    REQUIRE_THROWS_AS(signEntry(owner, bad, epochKey), EntryError);
  };
  Body twice = *d.body;
  twice.relays[1].key = twice.relays[0].key;
  refused(twice);
  Body tooMany{Kind::RELAYS, "", {}};
  for (uint8_t i = 0; i <= RELAYS_MAX; ++i) tooMany.relays.push_back(RelayAddress{"192.0.2.1", 7500, key32(i)});
  refused(tooMany);
  Body inUpdate{Kind::UPDATE, "hello", {}};
  inUpdate.relays = d.body->relays;
  refused(inUpdate);
  Body portZero = *d.body;
  portZero.relays[0].port = 0;
  refused(portZero);
  Body spaceInHost = *d.body;
  spaceInHost.relays[0].host = "a b";
  refused(spaceInHost);
  // No relays at all is the owner stopping to use relays.
  Body none{Kind::RELAYS, "", {}};
  EntryDraft empty = d;
  empty.body = none;
  REQUIRE(openBody(signEntry(owner, empty, epochKey), epochKey)->relays.empty());
}
