// The entry format: signing and decoding every kind of entry, ids, packing, and every rejection
// decodeEntry and openBody can give. Entries that signEntry refuses to make are built here by hand
// with the Cap'n Proto schema and signed with the real author key, so that decodeEntry's own checks
// (not the signature) are what refuses them.
#include <catch2/catch.hpp>

#include "tests/support/hex.h"
#include "tests/support/seed.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>

#include "crypto/hash.h"
#include "protocol/entry.h"
#include "specs/entry.capnp.h"

namespace {

using kith::test::unhex;

using namespace kith;
using namespace kith::protocol;
using crypto::Identity;

const char* const SENTENCE = "Mum's surgery went well, she is home on Thursday.";
constexpr int64_t TIMESTAMP_MS = 1717171717000;

Identity identityFromByte(uint8_t b) {
  Bytes seed(crypto::SEED_BYTES, b);
  return Identity::fromSeed(seed);
}

const Identity& owner() {
  static const Identity id = identityFromByte(0x01);
  return id;
}
const Identity& member() {
  static const Identity id = identityFromByte(0x02);
  return id;
}
const Identity& stranger() {
  static const Identity id = identityFromByte(0x03);
  return id;
}

const Bytes& epochKey() {
  static const Bytes key(crypto::AEAD_KEY_BYTES, 0x5e);
  return key;
}
const Bytes& otherKey() {
  static const Bytes key(crypto::AEAD_KEY_BYTES, 0x6f);
  return key;
}

Bytes salt() { return unhex("000102030405060708090a0b0c0d0e0f"); }
JournalId journal() { return journalIdFor(owner().publicKey(), salt()); }

KeyWrap wrapTo(const Identity& to, uint32_t epoch, ByteView key = epochKey()) {
  return KeyWrap{to.publicKey(), epoch, crypto::sealTo(to.boxPublicKey(), key)};
}

EntryDraft genesisDraft() {
  EntryDraft d;
  d.journal = journal();
  d.seq = 1;
  d.timestampMs = TIMESTAMP_MS;
  d.epoch = 0;
  d.control.type = Control::Type::CREATE;
  d.control.salt = salt();
  d.control.wraps = {wrapTo(owner(), 0)};
  return d;
}

EntryDraft plainDraft(uint64_t seq = 2) {
  EntryDraft d;
  d.journal = journal();
  d.seq = seq;
  d.prev[0] = 0xaa;
  d.timestampMs = TIMESTAMP_MS + static_cast<int64_t>(seq);
  d.epoch = 0;
  return d;
}

EntryDraft bodyDraft(std::string text, Kind kind = Kind::UPDATE, std::vector<EntryId> refs = {}) {
  EntryDraft d = plainDraft(3);
  d.body = Body{kind, std::move(text), std::move(refs)};
  return d;
}

bool contains(ByteView haystack, ByteView needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

void flipBit(Bytes& b, size_t bit) { b[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8)); }

// The reason `f` is refused for; fails the test when it succeeds or throws anything but EntryError.
Rejection rejectionOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const EntryError& e) {
    CHECK_FALSE(std::string(e.what()).empty());
    return e.reason();
  } catch (const std::exception& e) { FAIL("expected EntryError, got another exception: " << e.what()); }
  FAIL("expected EntryError, but it was accepted");
  return Rejection::MALFORMED;
}

Rejection decodeRejection(ByteView bytes, ByteView signature) {
  return rejectionOf([&] { (void)decodeEntry(bytes, signature); });
}

// The author's signature over arbitrary entry bytes, as signEntry makes it (specs/entry.capnp).
crypto::Signature signBytes(const Identity& author, ByteView bytes) {
  Bytes message(asBytes("kith/entry/v1").begin(), asBytes("kith/entry/v1").end());
  message.push_back(0);
  message.insert(message.end(), bytes.begin(), bytes.end());
  return author.sign(message);
}

capnp::Data::Reader capData(ByteView b) { return {b.data(), b.size()}; }

Bytes wordsToBytes(kj::ArrayPtr<const capnp::word> words) {
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

using EntryEdit = std::function<void(schema::Entry::Builder)>;

// A valid control-free, body-free entry by `author` (seq 2 of the test journal), then `edit`,
// in canonical form.
Bytes craftEntry(
    const Identity& author, const EntryEdit& edit = [](schema::Entry::Builder) {}) {
  capnp::MallocMessageBuilder message;
  auto e = message.initRoot<schema::Entry>();
  e.setVersion(ENTRY_VERSION);
  JournalId j = journal();
  e.setJournal(capData(j));
  e.setAuthor(capData(author.publicKey()));
  e.setSeq(2);
  EntryId prev{};
  prev[0] = 0xaa;
  e.setPrev(capData(prev));
  e.setTimestamp(TIMESTAMP_MS);
  e.setEpoch(0);
  e.initControl().setNone();
  edit(e);
  return wordsToBytes(capnp::canonicalize(e.asReader()));
}

// Decodes crafted bytes signed by their author.
Entry decodeCrafted(const Identity& author, ByteView bytes) { return decodeEntry(bytes, signBytes(author, bytes)); }
Rejection craftedRejection(const Identity& author, const EntryEdit& edit) {
  Bytes bytes = craftEntry(author, edit);
  return decodeRejection(bytes, signBytes(author, bytes));
}

// A Body message as signEntry encodes it (flat array with segment table), before encryption.
Bytes bodyPlaintext(const std::function<void(schema::Body::Builder)>& fill) {
  capnp::MallocMessageBuilder message;
  fill(message.initRoot<schema::Body>());
  return wordsToBytes(capnp::messageToFlatArray(message));
}

// An entry by the owner whose body is `plaintext` correctly encrypted under the epoch key.
Entry entryWithBodyPlaintext(ByteView plaintext) {
  Bytes ad = bodyAssociatedData(journal(), owner().publicKey(), 2, 0);
  Bytes sealed = crypto::aeadSeal(epochKey(), plaintext, ad);
  Bytes bytes = craftEntry(owner(), [&](schema::Entry::Builder e) { e.setBody(capData(sealed)); });
  return decodeCrafted(owner(), bytes);
}

void requireSameWraps(const std::vector<KeyWrap>& a, const std::vector<KeyWrap>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].member == b[i].member);
    CHECK(a[i].epoch == b[i].epoch);
    CHECK(a[i].sealed == b[i].sealed);
  }
}

void requireSameEntry(const Entry& a, const Entry& b) {
  CHECK(a.journal == b.journal);
  CHECK(a.author == b.author);
  CHECK(a.seq == b.seq);
  CHECK(a.prev == b.prev);
  CHECK(a.timestampMs == b.timestampMs);
  CHECK(a.epoch == b.epoch);
  CHECK(a.control.type == b.control.type);
  CHECK(a.control.salt == b.control.salt);
  CHECK(a.control.member == b.control.member);
  CHECK(a.control.role == b.control.role);
  CHECK(a.control.newEpoch == b.control.newEpoch);
  requireSameWraps(a.control.wraps, b.control.wraps);
  CHECK(a.body == b.body);
  CHECK(a.signature == b.signature);
  CHECK(a.id == b.id);
  CHECK(a.bytes == b.bytes);
}

// Checks the draft's clear fields against a signed entry.
void requireMatchesDraft(const Entry& e, const EntryDraft& d, const Identity& author) {
  CHECK(e.journal == d.journal);
  CHECK(e.author == author.publicKey());
  CHECK(e.seq == d.seq);
  CHECK(e.prev == d.prev);
  CHECK(e.timestampMs == d.timestampMs);
  CHECK(e.epoch == d.epoch);
  CHECK(e.control.type == d.control.type);
  requireSameWraps(e.control.wraps, d.control.wraps);
}

// Checks a decoded entry against the spec directly with libsodium: the signature covers
// "kith/entry/v1" || 0x00 || bytes and the id is BLAKE2b-256("kith/entry-id/v1" || 0x00 || bytes).
void requireSpecSignatureAndId(const Entry& e) {
  Bytes signedMessage(asBytes("kith/entry/v1").begin(), asBytes("kith/entry/v1").end());
  signedMessage.push_back(0);
  signedMessage.insert(signedMessage.end(), e.bytes.begin(), e.bytes.end());
  CHECK(crypto_sign_verify_detached(e.signature.data(), signedMessage.data(), signedMessage.size(), e.author.data()) ==
        0);
  Bytes idInput(asBytes("kith/entry-id/v1").begin(), asBytes("kith/entry-id/v1").end());
  idInput.push_back(0);
  idInput.insert(idInput.end(), e.bytes.begin(), e.bytes.end());
  Key32 id;
  crypto_generichash(id.data(), id.size(), idInput.data(), idInput.size(), nullptr, 0);
  CHECK(e.id == id);
}

}  // namespace

// ---- Building and reading back ---------------------------------------------------------------

TEST_CASE("journalIdFor is BLAKE2b-256(\"kith/journal/v1\" || 0x00 || owner || salt)", "[protocol][entry]") {
  // Computed with python3: hashlib.blake2b(b"kith/journal/v1\0" + owner + salt, digest_size=32), for
  // RFC 8032 TEST 1's public key and the salt 00 01 .. 0f.
  auto key = tryKey32FromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  REQUIRE(key.has_value());
  CHECK(toHex(journalIdFor(*key, salt())) == "44e8dbbd9b6ffbd6b0cc597119d7e6c8a1237b528823aa5728f67fb7f202cf49");
  CHECK(journalIdFor(*key, salt()) != journalIdFor(owner().publicKey(), salt()));
  Bytes otherSalt = salt();
  otherSalt[15] ^= 1;
  CHECK(journalIdFor(*key, salt()) != journalIdFor(*key, otherSalt));
}

TEST_CASE("a genesis (CREATE) signs and decodes", "[protocol][entry]") {
  EntryDraft draft = genesisDraft();
  Entry e = signEntry(owner(), draft, std::nullopt);
  requireMatchesDraft(e, draft, owner());
  CHECK(e.control.salt == salt());
  CHECK(e.body.empty());
  CHECK(e.bytes.size() % 8 == 0);
  requireSpecSignatureAndId(e);

  Entry decoded = decodeEntry(e.bytes, e.signature);
  requireSameEntry(decoded, e);

  // The wrap in the genesis gives the owner the epoch key.
  auto key = crypto::openSealed(owner().boxPublicKey(), owner().boxSecret(), decoded.control.wraps.at(0).sealed);
  REQUIRE(key.has_value());
  CHECK(Bytes(key->data(), key->data() + key->size()) == epochKey());
}

TEST_CASE("an ADD_MEMBER entry signs and decodes, for every role", "[protocol][entry]") {
  for (Role role : {Role::SUBSCRIBER, Role::COAUTHOR, Role::OWNER, Role::RELAY}) {
    INFO("role " << roleName(role));
    EntryDraft draft = plainDraft();
    draft.control.type = Control::Type::ADD_MEMBER;
    draft.control.member = member().publicKey();
    draft.control.role = role;
    if (role != Role::RELAY) draft.control.wraps = {wrapTo(member(), 0), wrapTo(member(), 1, otherKey())};
    Entry e = signEntry(owner(), draft, std::nullopt);
    requireMatchesDraft(e, draft, owner());
    CHECK(e.control.member == member().publicKey());
    CHECK(e.control.role == role);
    requireSpecSignatureAndId(e);
    requireSameEntry(decodeEntry(e.bytes, e.signature), e);
  }
}

TEST_CASE("a REMOVE_MEMBER entry signs and decodes", "[protocol][entry]") {
  EntryDraft draft = plainDraft(5);
  draft.epoch = 0;
  draft.control.type = Control::Type::REMOVE_MEMBER;
  draft.control.member = stranger().publicKey();
  draft.control.newEpoch = 1;
  draft.control.lastSeq = 41;
  draft.control.wraps = {wrapTo(owner(), 1, otherKey()), wrapTo(member(), 1, otherKey())};
  Entry e = signEntry(owner(), draft, std::nullopt);
  requireMatchesDraft(e, draft, owner());
  CHECK(e.control.member == stranger().publicKey());
  CHECK(e.control.newEpoch == 1);
  CHECK(e.control.lastSeq == 41);
  requireSpecSignatureAndId(e);
  requireSameEntry(decodeEntry(e.bytes, e.signature), e);
}

TEST_CASE("a control-free entry without a body signs and decodes", "[protocol][entry]") {
  EntryDraft draft = plainDraft();
  Entry e = signEntry(member(), draft, std::nullopt);
  requireMatchesDraft(e, draft, member());
  CHECK(e.control.type == Control::Type::NONE);
  CHECK(e.body.empty());
  CHECK_FALSE(openBody(e, epochKey()).has_value());  // nothing to open
  requireSameEntry(decodeEntry(e.bytes, e.signature), e);
}

TEST_CASE("a body of every kind, with text and refs, opens with openBody", "[protocol][entry]") {
  Entry genesis = signEntry(owner(), genesisDraft(), std::nullopt);
  EntryId other{};
  other.fill(0x77);
  for (Kind kind : {Kind::UPDATE, Kind::COMMENT, Kind::HEART, Kind::JOURNAL_INFO}) {
    INFO("kind " << kindName(kind));
    EntryDraft draft = bodyDraft(SENTENCE, kind, {genesis.id, other});
    Entry e = signEntry(member(), draft, epochKey());
    requireMatchesDraft(e, draft, member());
    CHECK(e.body.size() > crypto::AEAD_OVERHEAD_BYTES);
    requireSpecSignatureAndId(e);

    Entry decoded = decodeEntry(e.bytes, e.signature);
    requireSameEntry(decoded, e);
    auto body = openBody(decoded, epochKey());
    REQUIRE(body.has_value());
    CHECK(body->kind == kind);
    CHECK(body->text == SENTENCE);
    REQUIRE(body->refs.size() == 2);
    CHECK(body->refs[0] == genesis.id);
    CHECK(body->refs[1] == other);
  }
  // Empty text and no refs (a heart needs neither text nor, here, a ref) round-trip as well.
  Entry empty = signEntry(owner(), bodyDraft("", Kind::HEART), epochKey());
  auto body = openBody(empty, epochKey());
  REQUIRE(body.has_value());
  CHECK(body->text.empty());
  CHECK(body->refs.empty());
  // Control and body in one entry.
  EntryDraft both = bodyDraft("welcome");
  both.control.type = Control::Type::ADD_MEMBER;
  both.control.member = member().publicKey();
  both.control.role = Role::COAUTHOR;
  both.control.wraps = {wrapTo(member(), 0)};
  Entry e = signEntry(owner(), both, epochKey());
  CHECK(e.control.type == Control::Type::ADD_MEMBER);
  CHECK(openBody(decodeEntry(e.bytes, e.signature), epochKey())->text == "welcome");
}

TEST_CASE("the text of a body is not in the entry's bytes", "[protocol][entry]") {
  Entry e = signEntry(owner(), bodyDraft(SENTENCE), epochKey());
  Bytes packed = packEntry(e);
  CHECK_FALSE(contains(e.bytes, asBytes(SENTENCE)));
  CHECK_FALSE(contains(packed, asBytes(SENTENCE)));
  CHECK_FALSE(contains(packed, asBytes("surgery")));
  // The search can find what is in the clear: the author's key is.
  CHECK(contains(packed, owner().publicKey()));
  // And it finds the sentence in the plaintext form of a body, so the check above can fail.
  Bytes plain = bodyPlaintext([](schema::Body::Builder b) { b.setText(SENTENCE); });
  CHECK(contains(plain, asBytes(SENTENCE)));
}

// ---- Ids and packing ----------------------------------------------------------------------------

TEST_CASE("an entry's id is stable and depends on every field", "[protocol][entry]") {
  // Without a body, signing is deterministic (canonical encoding, Ed25519).
  Entry base = signEntry(owner(), plainDraft(), std::nullopt);
  CHECK(decodeEntry(base.bytes, base.signature).id == base.id);
  CHECK(unpackEntry(packEntry(base)).id == base.id);
  Entry again = signEntry(owner(), plainDraft(), std::nullopt);
  CHECK(again.id == base.id);
  CHECK(again.bytes == base.bytes);

  std::vector<std::pair<std::string, std::function<void(EntryDraft&)>>> changes = {
      {"journal", [](EntryDraft& d) { d.journal[31] ^= 1; }},
      {"seq", [](EntryDraft& d) { d.seq += 1; }},
      {"prev", [](EntryDraft& d) { d.prev[0] ^= 1; }},
      {"timestamp", [](EntryDraft& d) { d.timestampMs += 1; }},
      {"epoch", [](EntryDraft& d) { d.epoch += 1; }},
      {"control: add member",
       [](EntryDraft& d) {
         d.control.type = Control::Type::ADD_MEMBER;
         d.control.member = member().publicKey();
       }},
      {"control: add member with another role",
       [](EntryDraft& d) {
         d.control.type = Control::Type::ADD_MEMBER;
         d.control.member = member().publicKey();
         d.control.role = Role::COAUTHOR;
       }},
      {"control: add another member",
       [](EntryDraft& d) {
         d.control.type = Control::Type::ADD_MEMBER;
         d.control.member = stranger().publicKey();
       }},
      {"control: remove member",
       [](EntryDraft& d) {
         d.control.type = Control::Type::REMOVE_MEMBER;
         d.control.member = member().publicKey();
         d.control.newEpoch = 1;
       }},
      {"control: remove member, another epoch",
       [](EntryDraft& d) {
         d.control.type = Control::Type::REMOVE_MEMBER;
         d.control.member = member().publicKey();
         d.control.newEpoch = 2;
       }},
      {"control: remove member, another cut-off",
       [](EntryDraft& d) {
         d.control.type = Control::Type::REMOVE_MEMBER;
         d.control.member = member().publicKey();
         d.control.newEpoch = 1;
         d.control.lastSeq = 7;
       }},
      {"a body",
       [](EntryDraft& d) {
         d.body = Body{Kind::UPDATE, "x", {}};
       }},
  };
  std::set<EntryId> ids = {base.id};
  for (auto& [what, change] : changes) {
    INFO("changed: " << what);
    EntryDraft d = plainDraft();
    change(d);
    Entry e = signEntry(owner(), d, epochKey());
    CHECK(e.id != base.id);
    ids.insert(e.id);
  }
  // Another author with the same draft.
  ids.insert(signEntry(member(), plainDraft(), std::nullopt).id);
  CHECK(ids.size() == changes.size() + 2);

  // A body is encrypted under a fresh nonce, so signing the same draft twice gives two entries.
  Entry body1 = signEntry(owner(), bodyDraft("same"), epochKey());
  Entry body2 = signEntry(owner(), bodyDraft("same"), epochKey());
  CHECK(body1.id != body2.id);
  CHECK(decodeEntry(body1.bytes, body1.signature).id == body1.id);
}

TEST_CASE("packEntry and unpackEntry round-trip, and a short pack is MALFORMED", "[protocol][entry]") {
  for (const Entry& e :
       {signEntry(owner(), genesisDraft(), std::nullopt), signEntry(member(), bodyDraft(SENTENCE), epochKey())}) {
    Bytes packed = packEntry(e);
    REQUIRE(packed.size() == crypto::SIGNATURE_BYTES + e.bytes.size());
    CHECK(std::equal(e.signature.begin(), e.signature.end(), packed.begin()));
    Entry unpacked = unpackEntry(packed);
    requireSameEntry(unpacked, e);
  }
  Bytes packed = packEntry(signEntry(owner(), plainDraft(), std::nullopt));
  for (size_t len : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{72}, packed.size() - 8, packed.size() - 1}) {
    INFO("packed entry cut to " << len << " bytes");
    CHECK(rejectionOf([&] { (void)unpackEntry(ByteView(packed).first(len)); }) == Rejection::MALFORMED);
  }
}

TEST_CASE("decodePackedEntry verifies the signature of stored bytes and unpackEntry does not", "[protocol][entry]") {
  Entry e = signEntry(member(), bodyDraft(SENTENCE), epochKey());
  Bytes packed = packEntry(e);
  requireSameEntry(decodePackedEntry(packed), e);
  packed[crypto::SIGNATURE_BYTES / 2] ^= 0x01;  // one bit of the signature: the entry's bytes are intact
  CHECK(rejectionOf([&] { (void)decodePackedEntry(packed); }) == Rejection::BAD_SIGNATURE);
  // unpackEntry is for bytes this node verified before it stored them: it parses and checks the
  // values, and the id (over the entry's bytes) is unchanged.
  Entry unpacked = unpackEntry(packed);
  CHECK(unpacked.id == e.id);
  CHECK(unpacked.bytes == e.bytes);
  CHECK(unpacked.signature != e.signature);
}

// ---- Rejections -------------------------------------------------------------------------------

TEST_CASE("every single-bit flip in an entry's bytes is refused, never accepted", "[protocol][entry]") {
  std::map<Rejection, int> reasons;
  for (const Entry& e :
       {signEntry(owner(), bodyDraft("hi"), epochKey()), signEntry(owner(), genesisDraft(), std::nullopt)}) {
    INFO("entry of " << e.bytes.size() << " bytes");
    for (size_t bit = 0; bit < e.bytes.size() * 8; ++bit) {
      Bytes bad = e.bytes;
      flipBit(bad, bit);
      INFO("bit " << bit << " (byte " << bit / 8 << ")");
      Rejection r = decodeRejection(bad, e.signature);
      // specs/entry.md checks size, encoding and the genesis rules before the signature, so a flip
      // in the epoch can read as too-large and one in a genesis's journal, author or salt as
      // bad-genesis; the chain and role reasons belong to the store and never come from here.
      CHECK((r == Rejection::MALFORMED || r == Rejection::BAD_SIGNATURE || r == Rejection::TOO_LARGE ||
             r == Rejection::BAD_GENESIS));
      reasons[r]++;
    }
  }
  for (auto [reason, count] : reasons)
    std::cout << "  bit flips refused as " << rejectionName(reason) << ": " << count << "\n";
  // Both main kinds of refusal happen: the loop really reached the signature check.
  CHECK(reasons[Rejection::MALFORMED] > 0);
  CHECK(reasons[Rejection::BAD_SIGNATURE] > 0);
}

TEST_CASE("every single-bit flip in the signature is BAD_SIGNATURE", "[protocol][entry]") {
  Entry e = signEntry(owner(), bodyDraft("hi"), epochKey());
  for (size_t bit = 0; bit < crypto::SIGNATURE_BYTES * 8; ++bit) {
    Bytes bad(e.signature.begin(), e.signature.end());
    flipBit(bad, bit);
    INFO("signature bit " << bit);
    CHECK(decodeRejection(e.bytes, bad) == Rejection::BAD_SIGNATURE);
  }
  // Another author's signature over the same bytes.
  CHECK(decodeRejection(e.bytes, signBytes(member(), e.bytes)) == Rejection::BAD_SIGNATURE);
  // A signature without the domain prefix.
  crypto::Signature bare = owner().sign(e.bytes);
  CHECK(decodeRejection(e.bytes, bare) == Rejection::BAD_SIGNATURE);
  // Wrong lengths are MALFORMED.
  Bytes sig(e.signature.begin(), e.signature.end());
  CHECK(decodeRejection(e.bytes, ByteView(sig).first(63)) == Rejection::MALFORMED);
  CHECK(decodeRejection(e.bytes, ByteView{}) == Rejection::MALFORMED);
  sig.push_back(0);
  CHECK(decodeRejection(e.bytes, sig) == Rejection::MALFORMED);
}

TEST_CASE("a non-canonical encoding is MALFORMED, even when correctly signed", "[protocol][entry]") {
  Entry e = signEntry(owner(), bodyDraft("hi"), epochKey());
  auto signedRejection = [](ByteView bytes) { return decodeRejection(bytes, signBytes(owner(), bytes)); };

  // Not whole words.
  for (size_t extra = 1; extra < 8; ++extra) {
    Bytes bad = e.bytes;
    bad.resize(bad.size() + extra, 0);
    INFO(extra << " extra bytes");
    CHECK(signedRejection(bad) == Rejection::MALFORMED);
    CHECK(signedRejection(ByteView(e.bytes).first(e.bytes.size() - extra)) == Rejection::MALFORMED);
  }
  CHECK(signedRejection(ByteView{}) == Rejection::MALFORMED);

  // A whole extra word after the message (zero or not), or one word missing.
  for (uint8_t fill : {uint8_t{0}, uint8_t{0x01}, uint8_t{0xff}}) {
    Bytes bad = e.bytes;
    bad.resize(bad.size() + 8, fill);
    INFO("extra word of " << int(fill));
    CHECK(signedRejection(bad) == Rejection::MALFORMED);
  }
  CHECK(signedRejection(ByteView(e.bytes).first(e.bytes.size() - 8)) == Rejection::MALFORMED);

  // The same message with a segment table in front (the flat-array framing, not the canonical one).
  {
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(e.bytes.size() / 8);
    std::memcpy(words.begin(), e.bytes.data(), e.bytes.size());
    kj::ArrayPtr<const capnp::word> segments[1] = {words.asPtr()};
    capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments, 1));
    capnp::MallocMessageBuilder copy;
    copy.setRoot(reader.getRoot<schema::Entry>());
    Bytes framed = wordsToBytes(capnp::messageToFlatArray(copy));
    CHECK(signedRejection(framed) == Rejection::MALFORMED);
  }

  // A builder's own layout before canonicalisation: an untrimmed zero data word (timestamp 0 is
  // the last word of the data section) and an unreachable blob left by setting prev twice.
  {
    capnp::MallocMessageBuilder message;
    auto b = message.initRoot<schema::Entry>();
    b.setVersion(ENTRY_VERSION);
    JournalId j = journal();
    b.setJournal(capData(j));
    b.setAuthor(capData(owner().publicKey()));
    b.setSeq(2);
    EntryId prev{};
    b.setPrev(capData(prev));
    prev[0] = 0xaa;
    b.setPrev(capData(prev));
    b.setTimestamp(0);
    b.initControl().setNone();
    auto segments = message.getSegmentsForOutput();
    REQUIRE(segments.size() == 1);
    Bytes raw = wordsToBytes(segments[0]);
    Bytes canonical = wordsToBytes(capnp::canonicalize(b.asReader()));
    REQUIRE(raw != canonical);
    CHECK(signedRejection(raw) == Rejection::MALFORMED);
    // The canonical form of the same entry is accepted: the layout alone was refused.
    Entry ok = decodeCrafted(owner(), canonical);
    CHECK(ok.prev == prev);
  }
}

TEST_CASE("decodeEntry refuses fields of the wrong size or out of range", "[protocol][entry]") {
  using B = schema::Entry::Builder;
  const Identity& a = owner();
  // A correctly crafted entry is accepted, so each case below fails for its own field.
  CHECK(decodeCrafted(a, craftEntry(a)).seq == 2);

  Bytes short31(31, 0x11), long33(33, 0x11);
  CHECK(craftedRejection(a, [](B e) { e.setVersion(0); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [](B e) { e.setVersion(ENTRY_VERSION + 1); }) == Rejection::MALFORMED);
  // Format 1 (removals without a cut-off) is refused outright (specs/entry.md, "Format versions").
  CHECK(ENTRY_VERSION == 2);
  CHECK(craftedRejection(a, [](B e) { e.setVersion(1); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) { e.setJournal(capData(short31)); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) { e.setJournal(capData(long33)); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [](B e) { e.disownJournal(); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) { e.setAuthor(capData(short31)); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [](B e) { e.disownAuthor(); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) { e.setPrev(capData(long33)); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [](B e) { e.disownPrev(); }) == Rejection::MALFORMED);

  CHECK(craftedRejection(a, [](B e) { e.setSeq(0); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [](B e) { e.setSeq(SEQ_MAX + 1); }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [](B e) { e.setSeq(~uint64_t{0}); }) == Rejection::MALFORMED);
  CHECK(decodeCrafted(a, craftEntry(a, [](B e) { e.setSeq(SEQ_MAX); })).seq == SEQ_MAX);

  CHECK(craftedRejection(a, [](B e) { e.setEpoch(EPOCHS_MAX + 1); }) == Rejection::TOO_LARGE);
  CHECK(decodeCrafted(a, craftEntry(a, [](B e) { e.setEpoch(EPOCHS_MAX); })).epoch == EPOCHS_MAX);

  // A body too short to hold a nonce and a tag, and one over the limit.
  for (size_t len : {size_t{1}, crypto::AEAD_OVERHEAD_BYTES - 1}) {
    Bytes body(len, 0x42);
    INFO("body of " << len << " bytes");
    CHECK(craftedRejection(a, [&](B e) { e.setBody(capData(body)); }) == Rejection::MALFORMED);
  }
  Bytes minimal(crypto::AEAD_OVERHEAD_BYTES, 0x42);
  CHECK(decodeCrafted(a, craftEntry(a, [&](B e) { e.setBody(capData(minimal)); })).body == minimal);
  Bytes large(BODY_BYTES_MAX, 0x42);
  CHECK(decodeCrafted(a, craftEntry(a, [&](B e) { e.setBody(capData(large)); })).body.size() == BODY_BYTES_MAX);
  large.push_back(0x42);
  CHECK(craftedRejection(a, [&](B e) { e.setBody(capData(large)); }) == Rejection::TOO_LARGE);
}

TEST_CASE("decodeEntry refuses malformed control entries", "[protocol][entry]") {
  using B = schema::Entry::Builder;
  const Identity& a = owner();
  KeyWrap good = wrapTo(member(), 0);
  auto setWrap = [](schema::KeyWrap::Builder w, ByteView memberKey, ByteView sealed) {
    w.setMember(capData(memberKey));
    w.setEpoch(0);
    w.setSealed(capData(sealed));
  };
  // The well-formed version of what is broken below.
  Entry ok = decodeCrafted(a, craftEntry(a, [&](B e) {
                             auto add = e.initControl().initAddMember();
                             add.setMember(capData(member().publicKey()));
                             add.setRole(schema::Role::COAUTHOR);
                             setWrap(add.initWraps(1)[0], good.member, good.sealed);
                           }));
  CHECK(ok.control.type == Control::Type::ADD_MEMBER);
  CHECK(ok.control.wraps.size() == 1);

  Bytes short31(31, 0x11);
  CHECK(craftedRejection(a, [&](B e) {
          auto add = e.initControl().initAddMember();
          add.setMember(capData(short31));
        }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) {
          auto add = e.initControl().initAddMember();
          add.setMember(capData(member().publicKey()));
          add.setRole(static_cast<schema::Role>(4));  // not a role
        }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) {
          auto add = e.initControl().initAddMember();
          add.setMember(capData(member().publicKey()));
          setWrap(add.initWraps(1)[0], short31, good.sealed);
        }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) {
          auto remove = e.initControl().initRemoveMember();
          remove.setMember(capData(member().publicKey()));
          setWrap(remove.initWraps(1)[0], good.member, ByteView(good.sealed).first(good.sealed.size() - 1));
        }) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) {
          auto remove = e.initControl().initRemoveMember();
          remove.disownMember();
        }) == Rejection::MALFORMED);
  // A removal's cut-off is a seq: at most SEQ_MAX.
  auto removalWithCutoff = [&](uint64_t lastSeq) {
    return [&, lastSeq](B e) {
      auto remove = e.initControl().initRemoveMember();
      remove.setMember(capData(member().publicKey()));
      remove.setNewEpoch(1);
      remove.setLastSeq(lastSeq);
    };
  };
  CHECK(decodeCrafted(a, craftEntry(a, removalWithCutoff(SEQ_MAX))).control.lastSeq == SEQ_MAX);
  CHECK(decodeCrafted(a, craftEntry(a, removalWithCutoff(0))).control.lastSeq == 0);
  CHECK(craftedRejection(a, removalWithCutoff(SEQ_MAX + 1)) == Rejection::MALFORMED);
  CHECK(craftedRejection(a, [&](B e) {
          auto add = e.initControl().initAddMember();
          add.setMember(capData(member().publicKey()));
          auto wraps = add.initWraps(WRAPS_MAX + 1);
          for (auto w : wraps) setWrap(w, good.member, good.sealed);
        }) == Rejection::TOO_LARGE);
  // A genesis with a salt of the wrong length.
  CHECK(craftedRejection(a, [&](B e) {
          e.setSeq(1);
          e.setPrev(capData(EntryId{}));
          e.initControl().initCreate().setSalt(capData(ByteView(short31).first(15)));
        }) == Rejection::MALFORMED);
}

TEST_CASE("a genesis that does not bind the journal to its author is BAD_GENESIS", "[protocol][entry]") {
  auto reason = [](const Identity& author, EntryDraft d) {
    return rejectionOf([&] { (void)signEntry(author, d, std::nullopt); });
  };
  // The right draft is accepted, so each case below fails for its own reason.
  CHECK(signEntry(owner(), genesisDraft(), std::nullopt).control.type == Control::Type::CREATE);

  EntryDraft otherAuthor = genesisDraft();  // the owner's journal id, claimed by someone else
  CHECK(reason(member(), otherAuthor) == Rejection::BAD_GENESIS);

  EntryDraft otherSalt = genesisDraft();
  otherSalt.control.salt[0] ^= 1;
  CHECK(reason(owner(), otherSalt) == Rejection::BAD_GENESIS);

  EntryDraft otherJournal = genesisDraft();
  otherJournal.journal[0] ^= 1;
  CHECK(reason(owner(), otherJournal) == Rejection::BAD_GENESIS);

  EntryDraft seq2 = genesisDraft();
  seq2.seq = 2;
  CHECK(reason(owner(), seq2) == Rejection::BAD_GENESIS);

  EntryDraft epoch1 = genesisDraft();
  epoch1.epoch = 1;
  CHECK(reason(owner(), epoch1) == Rejection::BAD_GENESIS);

  // decodeEntry checks it too, for a correctly signed entry that did not come from signEntry.
  auto craftedGenesis = [](const Identity& author, uint64_t seq, const JournalId& j) {
    return craftEntry(author, [&](schema::Entry::Builder e) {
      e.setJournal(capData(j));
      e.setSeq(seq);
      e.setPrev(capData(EntryId{}));
      e.initControl().initCreate().setSalt(capData(salt()));
    });
  };
  Bytes good = craftedGenesis(owner(), 1, journal());
  CHECK(decodeCrafted(owner(), good).control.type == Control::Type::CREATE);
  Bytes stolen = craftedGenesis(member(), 1, journal());
  CHECK(decodeRejection(stolen, signBytes(member(), stolen)) == Rejection::BAD_GENESIS);
  Bytes late = craftedGenesis(owner(), 2, journal());
  CHECK(decodeRejection(late, signBytes(owner(), late)) == Rejection::BAD_GENESIS);
}

TEST_CASE("signEntry refuses entries over the limits with TOO_LARGE", "[protocol][entry]") {
  auto reason = [](EntryDraft d) { return rejectionOf([&] { (void)signEntry(owner(), d, epochKey()); }); };

  // Text: the limit itself is fine, one byte more is not.
  {
    Entry e = signEntry(owner(), bodyDraft(std::string(TEXT_BYTES_MAX, 't')), epochKey());
    auto body = openBody(decodeEntry(e.bytes, e.signature), epochKey());
    REQUIRE(body.has_value());
    CHECK(body->text.size() == TEXT_BYTES_MAX);
  }
  CHECK(reason(bodyDraft(std::string(TEXT_BYTES_MAX + 1, 't'))) == Rejection::TOO_LARGE);
  try {
    (void)signEntry(owner(), bodyDraft(std::string(TEXT_BYTES_MAX + 1, 't')), epochKey());
    FAIL("an over-long text was accepted");
  } catch (const EntryError& e) {
    CHECK(e.kind() == ErrorKind::INPUT);  // too large is the user's input, not corruption
  }

  // References.
  std::vector<EntryId> refs(REFS_MAX);
  for (size_t i = 0; i < refs.size(); ++i) refs[i][0] = static_cast<uint8_t>(i);
  {
    Entry e = signEntry(owner(), bodyDraft("c", Kind::COMMENT, refs), epochKey());
    CHECK(openBody(e, epochKey())->refs == refs);
  }
  refs.push_back(EntryId{});
  CHECK(reason(bodyDraft("c", Kind::COMMENT, refs)) == Rejection::TOO_LARGE);

  // Key wraps.
  EntryDraft wraps = plainDraft();
  wraps.control.type = Control::Type::ADD_MEMBER;
  wraps.control.member = member().publicKey();
  wraps.control.wraps.assign(WRAPS_MAX, wrapTo(member(), 0));
  CHECK(signEntry(owner(), wraps, std::nullopt).control.wraps.size() == WRAPS_MAX);
  wraps.control.wraps.push_back(wrapTo(member(), 0));
  CHECK(reason(wraps) == Rejection::TOO_LARGE);

  // The whole entry: each part within its limit, together over ENTRY_BYTES_MAX.
  EntryDraft whole = plainDraft();
  whole.control.type = Control::Type::ADD_MEMBER;
  whole.control.member = member().publicKey();
  whole.control.wraps.assign(WRAPS_MAX, wrapTo(member(), 0));
  whole.body = Body{Kind::UPDATE, std::string(TEXT_BYTES_MAX, 'w'), {}};
  CHECK(reason(whole) == Rejection::TOO_LARGE);
}

TEST_CASE("decodeEntry refuses input over ENTRY_BYTES_MAX as TOO_LARGE", "[protocol][entry]") {
  Bytes big(ENTRY_BYTES_MAX + 8, 0);
  crypto::Signature sig{};
  CHECK(decodeRejection(big, sig) == Rejection::TOO_LARGE);
}

// ---- Bodies -------------------------------------------------------------------------------------

TEST_CASE("openBody returns nullopt for the wrong key", "[protocol][entry]") {
  Entry e = signEntry(owner(), bodyDraft(SENTENCE), epochKey());
  CHECK(openBody(e, epochKey()).has_value());
  CHECK_FALSE(openBody(e, otherKey()).has_value());
  Bytes close = epochKey();
  close[31] ^= 1;
  CHECK_FALSE(openBody(e, close).has_value());
}

TEST_CASE("a body moved to another entry position does not open", "[protocol][entry]") {
  // The owner's entry at seq 2, epoch 0, in the test journal.
  Entry original = decodeCrafted(owner(), craftEntry(owner(), [](schema::Entry::Builder e) {
                                   Bytes plain = bodyPlaintext([](schema::Body::Builder b) { b.setText(SENTENCE); });
                                   Bytes sealed = crypto::aeadSeal(
                                       epochKey(), plain, bodyAssociatedData(journal(), owner().publicKey(), 2, 0));
                                   e.setBody(capData(sealed));
                                 }));
  REQUIRE(openBody(original, epochKey()).has_value());
  CHECK(openBody(original, epochKey())->text == SENTENCE);
  const Bytes stolen = original.body;

  using B = schema::Entry::Builder;
  auto moved = [&](const Identity& author, const EntryEdit& edit) {
    return decodeCrafted(author, craftEntry(author, [&](B e) {
                           e.setBody(capData(stolen));
                           edit(e);
                         }));
  };
  // Each of these is a correctly signed entry carrying the same ciphertext.
  CHECK_FALSE(openBody(moved(owner(), [](B e) { e.setSeq(3); }), epochKey()).has_value());
  CHECK_FALSE(openBody(moved(member(), [](B) {}), epochKey()).has_value());
  CHECK_FALSE(openBody(moved(owner(), [](B e) { e.setEpoch(1); }), epochKey()).has_value());
  CHECK_FALSE(openBody(moved(owner(),
                             [](B e) {
                               JournalId j = journal();
                               j[0] ^= 1;
                               e.setJournal(capData(j));
                             }),
                       epochKey())
                  .has_value());
  // The associated data covers the position (journal, author, seq, epoch), not the timestamp: the
  // same position with another timestamp opens, which shows the cases above fail for the move.
  CHECK(openBody(moved(owner(), [](B e) { e.setTimestamp(1); }), epochKey()).has_value());

  // The same for an entry made by signEntry, moved by editing the decoded struct.
  Entry e = signEntry(member(), bodyDraft(SENTENCE), epochKey());
  Entry shifted = e;
  shifted.seq += 1;
  CHECK_FALSE(openBody(shifted, epochKey()).has_value());
  shifted = e;
  shifted.author = owner().publicKey();
  CHECK_FALSE(openBody(shifted, epochKey()).has_value());
}

TEST_CASE("a body that decrypts but is malformed or over the limits is an EntryError", "[protocol][entry]") {
  auto openReason = [](ByteView plaintext) {
    Entry e = entryWithBodyPlaintext(plaintext);
    return rejectionOf([&] { (void)openBody(e, epochKey()); });
  };
  // The crafted path works for a good body.
  {
    Entry e = entryWithBodyPlaintext(bodyPlaintext([](schema::Body::Builder b) {
      b.setKind(schema::Kind::COMMENT);
      b.setText("ok");
    }));
    auto body = openBody(e, epochKey());
    REQUIRE(body.has_value());
    CHECK(body->kind == Kind::COMMENT);
    CHECK(body->text == "ok");
  }
  CHECK(openReason(ByteView{}) == Rejection::MALFORMED);                 // no root pointer
  CHECK(openReason(asBytes("hello")) == Rejection::MALFORMED);           // not whole words
  CHECK(openReason(unhex("ffffffff00000000")) == Rejection::MALFORMED);  // absurd segment table
  CHECK(openReason(unhex("0000000010000000"
                         "0000000000000000")) == Rejection::MALFORMED);  // segment past the end
  CHECK(openReason(bodyPlaintext([](schema::Body::Builder b) { b.setKind(static_cast<schema::Kind>(9)); })) ==
        Rejection::MALFORMED);
  CHECK(openReason(bodyPlaintext([](schema::Body::Builder b) {
          Bytes ref(31, 0x01);
          b.initRefs(1).set(0, capData(ref));
        })) == Rejection::MALFORMED);
  CHECK(openReason(bodyPlaintext([](schema::Body::Builder b) {
          auto refs = b.initRefs(REFS_MAX + 1);
          Bytes ref(32, 0x01);
          for (unsigned i = 0; i < refs.size(); ++i) refs.set(i, capData(ref));
        })) == Rejection::TOO_LARGE);
  CHECK(openReason(bodyPlaintext([](schema::Body::Builder b) {
          std::string text(TEXT_BYTES_MAX + 1, 't');
          b.setText(text);
        })) == Rejection::TOO_LARGE);
}

// ---- Garbage ----------------------------------------------------------------------------------

TEST_CASE("random bytes and random damage are always an EntryError, never a crash", "[protocol][entry]") {
  const uint64_t seed = kith::test::testSeed("entry-test");
  std::cout << "entry random inputs: seed " << seed << " (KITH_TEST_SEED=" << seed << " repeats it)\n";
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  auto randomBytes = [&](size_t n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
  };
  const std::vector<Entry> valid = {signEntry(owner(), genesisDraft(), std::nullopt),
                                    signEntry(owner(), bodyDraft(SENTENCE, Kind::COMMENT, {EntryId{}}), epochKey())};

  std::map<Rejection, int> reasons;
  for (int round = 0; round < 2000; ++round) {
    INFO("round " << round);
    Bytes bytes;
    Bytes signature = randomBytes(crypto::SIGNATURE_BYTES);
    switch (round % 4) {
      case 0:  // any length
        bytes = randomBytes(rng() % 2048);
        break;
      case 1:  // whole words, so that parsing is attempted
        bytes = randomBytes(8 * (1 + rng() % 256));
        break;
      case 2: {  // a valid entry with a few random bytes overwritten, and its real signature
        const Entry& e = valid[rng() % valid.size()];
        bytes = e.bytes;
        signature.assign(e.signature.begin(), e.signature.end());
        for (int n = 1 + static_cast<int>(rng() % 4); n > 0; --n)
          bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
        if (bytes == e.bytes) bytes[0] ^= 1;  // make sure something changed
        break;
      }
      case 3: {  // a valid entry's words reordered or cut short
        const Entry& e = valid[rng() % valid.size()];
        bytes = e.bytes;
        size_t words = bytes.size() / 8;
        size_t i = rng() % words, j = rng() % words;
        if (i == j) j = (i + 1) % words;
        std::swap_ranges(bytes.begin() + 8 * i, bytes.begin() + 8 * i + 8, bytes.begin() + 8 * j);
        if (bytes == e.bytes || rng() % 2 == 0) bytes.resize(8 * (rng() % words));
        signature.assign(e.signature.begin(), e.signature.end());
        break;
      }
    }
    reasons[decodeRejection(bytes, signature)]++;
    Bytes packed = signature;
    packed.insert(packed.end(), bytes.begin(), bytes.end());
    (void)rejectionOf([&] { (void)decodePackedEntry(packed); });
  }
  for (auto [reason, count] : reasons) std::cout << "  " << rejectionName(reason) << ": " << count << "\n";
  CHECK(reasons[Rejection::MALFORMED] > 0);
}

// ---- Names --------------------------------------------------------------------------------------

TEST_CASE("role, kind and rejection names", "[protocol][entry]") {
  for (Role r : {Role::SUBSCRIBER, Role::COAUTHOR, Role::OWNER, Role::RELAY}) {
    INFO(roleName(r));
    CHECK(tryParseRole(roleName(r)) == r);
  }
  CHECK(std::string(roleName(Role::COAUTHOR)) == "coauthor");
  CHECK_FALSE(tryParseRole("admin").has_value());
  CHECK_FALSE(tryParseRole("").has_value());
  CHECK_FALSE(tryParseRole("Owner").has_value());
  CHECK(std::string(kindName(Kind::JOURNAL_INFO)) == "journal-info");
  CHECK(std::string(rejectionName(Rejection::BAD_GENESIS)) == "bad-genesis");
  std::set<std::string> names;
  for (int r = 0; r <= static_cast<int>(Rejection::BAD_EPOCH); ++r)
    names.insert(rejectionName(static_cast<Rejection>(r)));
  CHECK(names.size() == 9);
  CHECK(names.count("unknown") == 0);
}
