// A family's week, with the real `kith` binary in temporary homes and real nodes on loopback: an
// owner, a co-author and three friends, each with a name. The owner posts an update with a photo
// that another node writes out byte for byte; friends comment, heart (twice: off again) and leave
// well-wishes; the family asks for help and two friends claim the one slot while their nodes are
// apart, after which every replica agrees who holds it; an edit and a deletion replicate; the
// owner's node logs each arrival by name and runs the configured notify command with no text in
// its environment.
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/kith-process.h"

namespace {

using kith::test::contains;
using kith::test::describe;
using kith::test::eventually;
using kith::test::RunResult;
using Home = kith::test::KithHome;
using Serve = kith::test::KithServe;
using nlohmann::json;

constexpr int REPLICATION_TIMEOUT_MS = 20000;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string joinAs(const Home& friendHome, const Home& owner, const std::string& address, const std::string& role) {
  json invite = owner.kithJson({"invite", "--address", address, "--role", role});
  json accepted = friendHome.kithJson({"accept", invite.at("code").get<std::string>()});
  return accepted.at("journal").get<std::string>();
}

// The request with this text, as `kith help --json --all` shows it.
json requestNamed(const Home& h, const std::string& text) {
  for (const auto& r : h.kithJson({"help", "--all"})) {
    if (r.at("text") == text) return r;
  }
  return json();
}

std::vector<std::string> holderNames(const json& request) {
  std::vector<std::string> out;
  for (const auto& h : request.at("holders")) out.push_back(h.at("key").get<std::string>());
  return out;
}

const json* updateWithText(const json& entries, const std::string& text) {
  for (const auto& e : entries) {
    if (e.value("kind", "") == "update" && e.value("text", "") == text && !e.value("deleted", false)) return &e;
  }
  return nullptr;
}

TEST_CASE("a family's week: names, a photo, comments, hearts, a contested help request, edits, notices",
          "[system][family]") {
  Home owner("Mary"), sam("Sam"), ann("Ann"), bob("Bob"), carol("Carol");
  const std::string title = "Mum's journey";
  const std::string journal = owner.kithJson({"journal", "create", title}).at("id").get<std::string>();

  // The owner's node runs the household's notify command for each arrival.
  const std::string noticeFile = owner.dir() + "/notices.txt";
  {
    std::string configPath = owner.path() + "/config.json";
    std::string existing = readFile(configPath);
    json config = existing.empty() ? json::object() : json::parse(existing);
    config["notify"] = {{"command",
                         "printf '%s|%s|%s|%s\\n' \"$KITH_KIND\" \"$KITH_JOURNAL_TITLE\" "
                         "\"$KITH_AUTHOR_NAME\" \"${KITH_TEXT-no text}\" >> '" +
                             noticeFile + "'"}};
    writeFile(configPath, config.dump());
  }
  Serve ownerNode(owner);
  const std::string address = ownerNode.address();

  REQUIRE(joinAs(sam, owner, address, "coauthor") == journal);
  for (const Home* f : {&ann, &bob, &carol}) REQUIRE(joinAs(*f, owner, address, "subscriber") == journal);

  // A photo, posted by the owner and written out on a friend's node byte for byte.
  std::string photo = "\x89PNG\r\n\x1a\n";
  for (int i = 0; photo.size() < 100 * 1024 + 17; ++i) photo.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  const std::string photoPath = owner.dir() + "/garden.png";
  writeFile(photoPath, photo);
  json posted = owner.kithJson({"post", "Mum had a good day in the garden", "--photo", photoPath});
  REQUIRE(posted.at("attachments").size() == 1);
  const std::string photoId = posted.at("attachments")[0].at("id").get<std::string>();
  const std::string updateId = posted.at("id").get<std::string>();

  for (const Home* f : {&sam, &ann, &bob, &carol}) f->kithOk({"sync"});
  json annRead = ann.read();
  const json* update = updateWithText(annRead, "Mum had a good day in the garden");
  REQUIRE(update != nullptr);
  CHECK(update->at("author_name") == "Mary");
  REQUIRE(update->at("attachments").size() == 1);
  CHECK(update->at("attachments")[0].at("name") == "garden.png");
  CHECK(update->at("attachments")[0].at("type") == "image/png");
  const std::string written = ann.dir() + "/garden-copy.png";
  ann.kithOk({"photo", photoId, "--out", written});
  CHECK(readFile(written) == photo);

  // Comments, hearts (Bob's twice: off again) and a well-wish, written while the friends' nodes
  // are not running: each says it is queued, and sync sends it.
  RunResult commented = ann.kithOk({"comment", updateId.substr(0, 12), "So glad to hear it"});
  CHECK(contains(commented.out, "Queued"));
  bob.kithOk({"heart", updateId.substr(0, 12)});
  ann.kithOk({"heart", updateId.substr(0, 12)});
  RunResult off = bob.kithOk({"heart", updateId.substr(0, 12)});
  CHECK(contains(off.out, "Took your heart back"));
  carol.kithOk({"wish", "Thinking of you all"});
  for (const Home* f : {&ann, &bob, &carol}) f->kithOk({"sync"});

  // The owner's node logged each arrival by name and ran the command, without the text.
  REQUIRE(ownerNode.waitForLog("New comment from Ann in " + title));
  REQUIRE(ownerNode.waitForLog("New well-wish from Carol in " + title));
  // Each command runs detached, so the two lines may be written in either order.
  eventually(REPLICATION_TIMEOUT_MS, [&] {
    std::string written = readFile(noticeFile);
    return contains(written, "wish|" + title + "|Carol") && contains(written, "comment|" + title + "|Ann");
  });
  std::string notices = readFile(noticeFile);
  INFO(notices << "\n--- the owner's node ---\n" << ownerNode.log());
  CHECK(contains(notices, "comment|" + title + "|Ann|no text"));
  CHECK_FALSE(contains(notices, "So glad"));
  CHECK_FALSE(contains(notices, "Thinking of you"));

  json ownerRead = owner.read();
  update = updateWithText(ownerRead, "Mum had a good day in the garden");
  REQUIRE(update != nullptr);
  CHECK(update->at("hearts") == 1);  // Ann's; Bob took his back
  REQUIRE(update->at("comments").size() == 1);
  CHECK(update->at("comments")[0].at("author_name") == "Ann");

  // The family asks for help; Ann and Bob claim the one slot while their nodes are apart.
  json asked = sam.kithJson({"ask", "Meal for Thursday", "--when", "2026-12-03T18:00", "--slots", "1"});
  const std::string requestId = asked.at("id").get<std::string>();
  sam.kithOk({"sync"});
  ann.kithOk({"sync"});
  bob.kithOk({"sync"});
  ann.kithOk({"claim", requestId.substr(0, 12)});
  // Bob's claim is later by the clock: whoever claimed first keeps the slot.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  RunResult bobClaim = bob.kithOk({"claim", requestId.substr(0, 12)});
  CHECK(contains(bobClaim.out, "You are down for"));  // apart, Bob's node sees his claim stand
  CHECK(holderNames(requestNamed(bob, "Meal for Thursday")) == std::vector<std::string>{bob.id()});
  ann.kithOk({"sync"});
  bob.kithOk({"sync"});
  for (const Home* h : {&sam, &ann, &bob, &carol}) h->kithOk({"sync"});
  for (const Home* h : {&owner, &sam, &ann, &bob, &carol}) {
    json r = requestNamed(*h, "Meal for Thursday");
    INFO(h->name() << ": " << r.dump());
    REQUIRE(r.is_object());
    CHECK(holderNames(r) == std::vector<std::string>{ann.id()});
    REQUIRE(r.at("waiting").size() == 1);
    CHECK(r.at("waiting")[0].at("key") == bob.id());
  }
  // What the owner reads now: names, the photo, the comment, hearts and the request.
  {
    RunResult text = owner.kithOk({"read"});
    INFO(text.out);
    CHECK(contains(text.out, "you  ["));  // the owner's own update
    CHECK(contains(text.out, "[photo " + photoId + "] garden.png"));
    CHECK(contains(text.out, "> Ann, "));
    CHECK(contains(text.out, "So glad to hear it"));
    CHECK(contains(text.out, "\u2665 1 (Ann)"));
    CHECK(contains(text.out, "Help wanted"));
    CHECK(contains(text.out, "Meal for Thursday"));
    CHECK(contains(text.out, "1 of 1 taken"));
    CHECK(contains(text.out, "Carol, "));
    CHECK(contains(text.out, "Thinking of you all"));
    RunResult help = owner.kithOk({"help"});
    INFO(help.out);
    CHECK(contains(help.out, "1 of 1 taken: Ann;  waiting: Bob"));
    CHECK(contains(help.out, "asked by Sam"));
  }
  // A friend cannot close a request; the co-author can.
  RunResult refused = carol.kith({"done", requestId.substr(0, 12)});
  CHECK(refused.exitCode != 0);
  sam.kithOk({"done", requestId.substr(0, 12)});

  // An edit and a deletion replicate.
  owner.kithOk({"edit", updateId.substr(0, 12), "Mum had a lovely day in the garden"});
  json annComments = ann.read();
  std::string commentId;
  for (const auto& e : annComments) {
    if (e.value("kind", "") == "comment" && e.value("text", "") == "So glad to hear it") commentId = e.at("id");
  }
  REQUIRE_FALSE(commentId.empty());
  ann.kithOk({"delete", commentId.substr(0, 12)});
  ann.kithOk({"sync"});
  sam.kithOk({"sync"});
  carol.kithOk({"sync"});
  json carolRead = carol.read();
  update = updateWithText(carolRead, "Mum had a lovely day in the garden");
  REQUIRE(update != nullptr);
  CHECK(update->at("edited") == true);
  CHECK(update->at("comments").empty());
  CHECK(requestNamed(carol, "Meal for Thursday").at("state") == "done");

  // What a person reads: names, the photo, the comment's absence, hearts, the guestbook.
  RunResult text = carol.kithOk({"read"});
  INFO(text.out);
  CHECK(contains(text.out, "Mary"));
  CHECK(contains(text.out, "[photo " + photoId + "] garden.png"));
  CHECK(contains(text.out, "(edited"));
  CHECK(contains(text.out, "\u2665 1 (Ann)"));
  CHECK(contains(text.out, "Well-wishes:"));
  CHECK(contains(text.out, "you, "));  // Carol's own wish
  CHECK_FALSE(contains(text.out, "So glad to hear it"));
  // Read marks: everything is read now.
  CHECK(contains(carol.kithOk({"read", "--unread"}).out, "Nothing new"));

  ownerNode.stop();
}

}  // namespace
