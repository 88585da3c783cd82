// What a member does to a journal (store/actions.h), checked the same way for the `kith` commands
// and the web page: who may post, what counts as text, photos stored and read back, hearts that
// toggle, claims that cannot be doubled or given back by someone not holding them. A refusal must
// leave the store as it was.
#include <string>
#include <vector>

#include "store/actions.h"
#include "store/timeline.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;
using kith::test::errorKindOf;

// The owner's node, with one journal, and a member's node that holds it too.
struct Circle {
  Household owner;
  Household member;
  JournalId journal{};

  explicit Circle(Role memberRole) {
    journal = createJournal(*owner.store, owner.keyring(), "Mum's journey");
    addMember(*owner.store, owner.keyring(), journal, member.key(), memberRole);
    replicate(owner, member, journal, true);
  }

  Writer ownerWriter() const { return Writer{*owner.store, owner.keyring(), "Ana"}; }
  Writer memberWriter() const { return Writer{*member.store, member.keyring(), "Ben"}; }
  JournalView view(const Household& h) const { return foldJournal(readJournal(*h.store, h.keyring(), journal)); }
};

Bytes pngBytes(size_t n) {
  Bytes b = randomBytes(n);
  const uint8_t magic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::copy(std::begin(magic), std::end(magic), b.begin());
  return b;
}

const PostView& updateOf(const JournalView& v, const EntryId& id) {
  for (const auto& p : v.updates) {
    if (p.id == id) return p;
  }
  FAIL("no such update");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a subscriber may not post an update, and nothing of it is stored", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  auto before = c.member.store->versionVector(c.journal);

  CHECK(errorKindOf([&] { (void)postUpdate(c.memberWriter(), c.journal, "hello", {}); }) == ErrorKind::AUTH);
  // With a photo: refused before any piece of it is written.
  CHECK(errorKindOf([&] {
          (void)postUpdate(c.memberWriter(), c.journal, "look", {Photo{"x.png", pngBytes(1000)}});
        }) == ErrorKind::AUTH);
  CHECK(c.member.store->versionVector(c.journal) == before);
  CHECK_FALSE(c.member.store->head(c.journal, c.member.key()).has_value());

  // A subscriber may still write what subscribers write.
  Entry wish = postWish(c.memberWriter(), c.journal, "get well soon");
  CHECK(c.member.store->head(c.journal, c.member.key()).has_value());
  REQUIRE(c.view(c.member).wishes.size() == 1);
  CHECK(c.view(c.member).wishes[0].id == wish.id);
}

TEST_CASE("a co-author may post an update, with the name published first", "[store][actions]") {
  Circle c(Role::COAUTHOR);
  Posted p = postUpdate(c.memberWriter(), c.journal, "from the waiting room", {});
  JournalView v = c.view(c.member);
  CHECK(updateOf(v, p.entry.id).text == "from the waiting room");
  CHECK(v.names.at(c.member.key()) == "Ben");
}

TEST_CASE("an update with neither text nor photos is refused, and nothing is stored", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  auto before = c.owner.store->versionVector(c.journal);
  CHECK(errorKindOf([&] { (void)postUpdate(c.ownerWriter(), c.journal, "", {}); }) == ErrorKind::USAGE);
  CHECK(c.owner.store->versionVector(c.journal) == before);
  CHECK(c.view(c.owner).updates.empty());
}

TEST_CASE("an update's photo is stored, read back whole, and typed from its bytes", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  // More than one piece, so that putting them together is tested.
  Bytes photo = pngBytes(protocol::CHUNK_BYTES_MAX + 1234);
  std::vector<std::pair<std::string, size_t>> progress;
  Posted p = postUpdate(c.ownerWriter(), c.journal, "", {Photo{"scan.png", photo}},
                        [&](const std::string& name, size_t done, size_t total) {
                          progress.emplace_back(name, done);
                          CHECK(total == 2);
                        });
  REQUIRE(p.attachments.size() == 1);
  const Attachment& a = p.attachments[0];
  CHECK(a.name == "scan.png");
  CHECK(a.mime == "image/png");
  CHECK(a.size == photo.size());
  CHECK(a.chunks.size() == 2);
  CHECK(progress.size() == 2);

  CHECK(readAttachment(*c.owner.store, c.owner.keyring(), c.journal, a) == photo);
  JournalView v = c.view(c.owner);
  const PostView& shown = updateOf(v, p.entry.id);
  REQUIRE(shown.attachments.size() == 1);
  CHECK(shown.attachments[0] == a);

  // And on the member's node once it has the entries.
  replicate(c.owner, c.member, c.journal, true);
  CHECK(readAttachment(*c.member.store, c.member.keyring(), c.journal, a) == photo);
}

TEST_CASE("a file's type is read from its first bytes", "[store][actions]") {
  CHECK(sniffMime(pngBytes(64)) == "image/png");
  Bytes jpeg = randomBytes(64);
  jpeg[0] = 0xff, jpeg[1] = 0xd8, jpeg[2] = 0xff;
  CHECK(sniffMime(jpeg) == "image/jpeg");
  std::string gif = "GIF89a....";
  CHECK(sniffMime(asBytes(gif)) == "image/gif");
  const char webpHead[] = "RIFF\x10\x00\x00\x00WEBPVP8 ";
  std::string webp(webpHead, sizeof webpHead - 1);
  CHECK(sniffMime(asBytes(webp)) == "image/webp");
  std::string text = "just some text";
  CHECK(sniffMime(asBytes(text)) == "application/octet-stream");
  Bytes shortPng = {0x89, 'P', 'N', 'G'};  // cut short: not a PNG
  CHECK(sniffMime(shortPng) == "application/octet-stream");
  CHECK(sniffMime(Bytes{}) == "application/octet-stream");
}

TEST_CASE("a second heart takes the first back", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  Entry update = postUpdate(c.ownerWriter(), c.journal, "first walk outside", {}).entry;
  replicate(c.owner, c.member, c.journal, true);
  const PublicKey me = c.member.key();

  Reaction on = react(c.memberWriter(), update, Kind::HEART, "", {});
  CHECK_FALSE(on.heartOff);
  CHECK(on.target.text == "first walk outside");
  CHECK(updateOf(c.view(c.member), update.id).hearts == std::set<PublicKey>{me});

  Reaction off = react(c.memberWriter(), update, Kind::HEART, "", {});
  CHECK(off.heartOff);
  CHECK(off.entry.id != on.entry.id);
  CHECK(updateOf(c.view(c.member), update.id).hearts.empty());

  Reaction again = react(c.memberWriter(), update, Kind::HEART, "", {});
  CHECK_FALSE(again.heartOff);
  CHECK(updateOf(c.view(c.member), update.id).hearts == std::set<PublicKey>{me});
}

TEST_CASE("an empty comment is refused, and nothing is stored", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  Entry update = postUpdate(c.ownerWriter(), c.journal, "news", {}).entry;
  replicate(c.owner, c.member, c.journal, true);
  auto before = c.member.store->versionVector(c.journal);

  CHECK(errorKindOf([&] { (void)react(c.memberWriter(), update, Kind::COMMENT, "", {}); }) == ErrorKind::USAGE);
  CHECK(errorKindOf([&] { (void)react(c.memberWriter(), update, Kind::COMMENT, std::string("a\0b", 3), {}); }) ==
        ErrorKind::INPUT);
  CHECK(c.member.store->versionVector(c.journal) == before);

  Reaction said = react(c.memberWriter(), update, Kind::COMMENT, "thinking of you", {});
  JournalView v = c.view(c.member);
  const PostView& shown = updateOf(v, update.id);
  REQUIRE(shown.comments.size() == 1);
  CHECK(shown.comments[0].id == said.entry.id);
}

TEST_CASE("a member the owner removed may not write a well-wish", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  // While a member, the well-wish goes in.
  postWish(c.memberWriter(), c.journal, "thinking of you");
  replicate(c.member, c.owner, c.journal, true);

  removeMember(*c.owner.store, c.owner.keyring(), c.journal, c.member.key());
  replicate(c.owner, c.member, c.journal, true);
  auto m = c.member.store->member(c.journal, c.member.key());
  REQUIRE(m.has_value());
  REQUIRE_FALSE(m->active);

  auto before = c.member.store->versionVector(c.journal);
  CHECK(errorKindOf([&] { (void)postWish(c.memberWriter(), c.journal, "still here"); }) == ErrorKind::AUTH);
  CHECK(c.member.store->versionVector(c.journal) == before);
}

TEST_CASE("a well-wish must have text", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  auto before = c.member.store->versionVector(c.journal);
  CHECK(errorKindOf([&] { (void)postWish(c.memberWriter(), c.journal, ""); }) == ErrorKind::USAGE);
  CHECK(c.member.store->versionVector(c.journal) == before);
}

TEST_CASE("a claim cannot be made twice, nor given back by one who does not hold it", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  Body ask{Kind::ASK, "Meal for Thursday", {}};
  ask.slots = 1;
  Entry request = post(*c.owner.store, c.owner.keyring(), c.journal, ask);
  replicate(c.owner, c.member, c.journal, true);
  const PublicKey me = c.member.key();

  // Giving back what was never claimed.
  auto before = c.member.store->versionVector(c.journal);
  CHECK(errorKindOf([&] { (void)claimRequest(c.memberWriter(), request, Kind::UNCLAIM); }) == ErrorKind::CONFLICT);
  CHECK(c.member.store->versionVector(c.journal) == before);

  RequestView held = claimRequest(c.memberWriter(), request, Kind::CLAIM);
  CHECK(held.holders == std::vector<PublicKey>{me});
  CHECK(held.waiting.empty());

  before = c.member.store->versionVector(c.journal);
  CHECK(errorKindOf([&] { (void)claimRequest(c.memberWriter(), request, Kind::CLAIM); }) == ErrorKind::CONFLICT);
  CHECK(c.member.store->versionVector(c.journal) == before);

  RequestView given = claimRequest(c.memberWriter(), request, Kind::UNCLAIM);
  CHECK(given.holders.empty());
  CHECK(errorKindOf([&] { (void)claimRequest(c.memberWriter(), request, Kind::UNCLAIM); }) == ErrorKind::CONFLICT);
}

TEST_CASE("a claim on an entry that is not a help request is refused", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  Entry update = postUpdate(c.ownerWriter(), c.journal, "news", {}).entry;
  replicate(c.owner, c.member, c.journal, true);
  CHECK(errorKindOf([&] { (void)claimRequest(c.memberWriter(), update, Kind::CLAIM); }) == ErrorKind::INPUT);
}

TEST_CASE("text is valid UTF-8 without NUL bytes", "[store][actions]") {
  for (const std::string& ok : {std::string(""), std::string("plain"), std::string("caf\xc3\xa9"),
                                std::string("\xe2\x9d\xa4"), std::string("\xf0\x9f\x98\x80"), std::string("a\nb\tc")}) {
    INFO(ok);
    CHECK_NOTHROW(requireText(ok, "text"));
  }
  for (const std::string& bad : {
           std::string("a\0b", 3),           // NUL
           std::string("\0", 1),             // NUL alone
           std::string("\xff"),              // never in UTF-8
           std::string("caf\xc3"),           // cut short
           std::string("\xc3\x28"),          // a continuation byte missing
           std::string("\xc0\xaf"),          // overlong '/'
           std::string("\xe0\x80\xaf"),      // overlong, three bytes
           std::string("\xed\xa0\x80"),      // a UTF-16 surrogate
           std::string("\xf4\x90\x80\x80"),  // past U+10FFFF
           std::string("\x80"),              // a lone continuation byte
       }) {
    INFO(toHex(asBytes(bad)));
    CHECK(errorKindOf([&] { requireText(bad, "text"); }) == ErrorKind::INPUT);
  }
}

// A refused post or comment must not have published the writer's name first: that entry would
// replicate to everyone although the command failed.
TEST_CASE("an update refused for its photos writes nothing, not even the writer's name", "[store][actions]") {
  Circle c(Role::COAUTHOR);
  auto before = c.member.store->versionVector(c.journal);
  CHECK(errorKindOf([&] {
          (void)postUpdate(c.memberWriter(), c.journal, "look", {Photo{"empty.png", Bytes{}}});
        }) == ErrorKind::INPUT);
  CHECK(c.member.store->versionVector(c.journal) == before);
  CHECK_FALSE(c.member.store->head(c.journal, c.member.key()).has_value());
}

TEST_CASE("a comment refused for its photos writes nothing, not even the writer's name", "[store][actions]") {
  Circle c(Role::SUBSCRIBER);
  Entry update = postUpdate(c.ownerWriter(), c.journal, "news", {}).entry;
  replicate(c.owner, c.member, c.journal, true);
  auto before = c.member.store->versionVector(c.journal);
  CHECK(errorKindOf([&] {
          (void)react(c.memberWriter(), update, Kind::COMMENT, "see", {Photo{"empty.png", Bytes{}}});
        }) == ErrorKind::INPUT);
  CHECK(c.member.store->versionVector(c.journal) == before);
  CHECK_FALSE(c.member.store->head(c.journal, c.member.key()).has_value());
}
