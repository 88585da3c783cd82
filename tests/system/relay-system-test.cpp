// Whole-system test of relays (specs/relay.md): real `kith serve` processes and real `kith relay
// serve` processes in temporary homes, on loopback ports the OS chooses. No household accepts a
// connection from another: every `kith serve` listens on a port told to nobody (no `peers add`, no
// invite with a household's address), and everything goes through relays. The owner posts and two
// friends read it; the owner stops, one friend comments and the other reads it; the owner comes
// back and catches up; a third friend joins through an invite that names only the relay, and a
// fourth waits for the owner's node to come back; a removed friend can neither read nor append
// after the re-key; a second relay added later catches up and carries the journal alone. Last, the
// relays' homes hold no journal id, no member key, no title and no text.
//
// Readiness is explicit: the "listening on" log lines, `kith read --json`, `kith status --json`
// and `kith relay status --json` polled against deadlines. The only fixed wait is the watch on the
// removed friend (something that must NOT happen has no event to wait for).
#include <catch2/catch.hpp>

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "cli/home.h"
#include "crypto/key-file.h"
#include "protocol/invite.h"
#include "protocol/relay.h"
#include "store/store.h"
#include "tests/support/kith-process.h"
#include "tests/support/seed.h"

namespace {

using kith::test::anyFileContains;
using kith::test::contains;
using kith::test::describe;
using kith::test::entryWithText;
using kith::test::eventually;
using kith::test::hasText;
using kith::test::RunResult;
using Home = kith::test::KithHome;
using Serve = kith::test::KithServe;
using Relay = kith::test::KithRelay;
using nlohmann::json;

// Through a relay, a change takes two hops and a reconnection may back off: generous for ASan.
constexpr int REPLICATION_TIMEOUT_MS = 30000;
// `kith accept` waits for the owner's answer at most 60 s (ACCEPT_RELAY_WAIT_MS), then catches up
// for at most 20 s: beyond both.
constexpr int ACCEPT_TIMEOUT_MS = 90000;
// How long the removed friend is watched once the others have what it must not get.
constexpr int REMOVED_WATCH_MS = 3000;

// The code of `kith invite --via-relay`, checked to name the relay and nothing of the household.
std::string relayInvite(const Home& owner, const Relay& relay) {
  json invite = owner.kithJson({"invite", "--via-relay"});
  const std::string code = invite.at("code").get<std::string>();
  kith::protocol::InviteCode decoded = kith::protocol::decodeInvite(code);
  INFO(code);
  REQUIRE(kith::toHex(decoded.node) == owner.id());
  REQUIRE(decoded.relay.has_value());
  REQUIRE(kith::toHex(*decoded.relay) == relay.key());
  REQUIRE(decoded.addresses.size() == 1);
  REQUIRE(decoded.addresses[0].host == "127.0.0.1");
  REQUIRE(decoded.addresses[0].port == relay.port());
  return code;
}

// A friend accepts a relay invite while the owner's node runs, and holds the journal after.
void acceptThroughRelay(const Home& f, const std::string& code, const std::string& journal, const std::string& title,
                        const Relay& relay) {
  INFO(f.name());
  json accepted = f.kithJson({"accept", code});
  REQUIRE(accepted.at("journal") == journal);
  REQUIRE(accepted.at("title") == title);
  REQUIRE(accepted.at("relay") == relay.address());
  // Joining gave the friend no address to dial: only the journal's relay.
  REQUIRE(f.kithJson({"peers", "list"}).empty());
  json list = f.kithJson({"journal", "list"});
  REQUIRE(list.size() == 1);
  REQUIRE(list[0].at("id") == journal);
}

// The update with `updateText` shows a comment `commentText` (by `author` when given).
bool hasComment(const json& entries, const std::string& updateText, const std::string& commentText,
                const std::string& author = "") {
  auto update = entryWithText(entries, updateText);
  if (!update || !update->contains("comments")) return false;
  for (const auto& c : update->at("comments")) {
    if (c.at("text") == commentText && (author.empty() || c.at("author") == author)) return true;
  }
  return false;
}

// The logs of the nodes involved, for a failure's message (read only when something failed).
using Logs = std::function<std::string()>;

// `who` reads `text` (an update) within the replication deadline.
void requireReads(const Home& who, const std::string& text, const Logs& logs) {
  INFO(who.name() << " should read: " << text);
  json last;
  bool seen = eventually(REPLICATION_TIMEOUT_MS, [&] {
    last = who.read();
    return hasText(last, text);
  });
  if (seen) return;
  INFO(last.dump(2) << "\n" << logs());
  REQUIRE(seen);
}

void requireReadsComment(const Home& who, const std::string& update, const std::string& comment,
                         const std::string& author, const Logs& logs) {
  INFO(who.name() << " should read the comment: " << comment);
  json last;
  bool seen = eventually(REPLICATION_TIMEOUT_MS, [&] {
    last = who.read();
    return hasComment(last, update, comment, author);
  });
  if (seen) return;
  INFO(last.dump(2) << "\n" << logs());
  REQUIRE(seen);
}

// `kith status --json` of a serving home says its link to `relay` for the journal is connected.
bool connectedTo(const Home& h, const Relay& relay) {
  json status = h.kithJson({"status"});
  if (!status.contains("reach") || !status["reach"].is_object()) return false;
  for (const auto& r : status["reach"].value("relays", json::array())) {
    if (r.value("key", "") == relay.key() && r.value("connected", false)) return true;
  }
  return false;
}

std::string raw(const std::string& hex) {
  std::optional<kith::Bytes> bytes = kith::tryFromHex(hex);
  REQUIRE(bytes.has_value());
  return std::string(kith::asChars(*bytes));
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

TEST_CASE(
    "relays: no household reachable by another - posts, comments, joins, a removal and a second relay "
    "all go through relays that learn nothing",
    "[relay][system]") {
  using namespace kith;
  uint64_t seed = kith::test::testSeed("relay system test (the seed only makes the posted sentences unique)");
  const std::string tag = " (" + std::to_string(seed) + ")";
  const std::string title = "Grandad's garden" + tag;
  const std::string firstUpdate = "The tomatoes are finally red, come and pick some" + tag;
  const std::string commentA = "We will come on Saturday with a basket" + tag;
  const std::string afterRemoval = "After removal: the allotment moves to plot 12" + tag;
  const std::string commentB = "Written by the removed friend after the removal" + tag;
  const std::string commentA2 = "Plot 12 is closer to our house, perfect" + tag;

  // ---- 1. The relay runs; the owner makes the journal, adds the relay and serves.
  Relay relay1("relay one");
  Home owner("owner"), friendA("friend A"), friendB("friend B"), friendC("friend C"), friendD("friend D");
  const std::string journal = owner.kithJson({"journal", "create", title}).at("id").get<std::string>();
  {
    json added = owner.kithJson({"relay", "add", relay1.address(), relay1.key()});
    REQUIRE(added.at("added") == true);
    json relays = owner.kithJson({"relay", "list"});
    REQUIRE(relays.size() == 1);
    REQUIRE(relays[0].at("key") == relay1.key());
  }
  std::optional<Serve> ownerNode;
  ownerNode.emplace(owner);  // on a port nobody is told
  REQUIRE(eventually(REPLICATION_TIMEOUT_MS, [&] { return connectedTo(owner, relay1); }));

  // ---- 2. Friends A and B join with relay invites, then serve (again on ports told to nobody).
  acceptThroughRelay(friendA, relayInvite(owner, relay1), journal, title, relay1);
  acceptThroughRelay(friendB, relayInvite(owner, relay1), journal, title, relay1);
  REQUIRE(owner.kithJson({"members"}).size() == 3);
  REQUIRE(owner.kithJson({"peers", "list"}).empty());
  std::optional<Serve> nodeA, nodeB, nodeC;
  nodeA.emplace(friendA);
  nodeB.emplace(friendB);
  std::vector<Relay*> relays{&relay1};
  const Logs logs = [&]() {
    std::string out;
    std::vector<std::pair<std::string, std::optional<Serve>*>> nodes{
        {"owner", &ownerNode}, {"friend A", &nodeA}, {"friend B", &nodeB}, {"friend C", &nodeC}};
    for (auto& [name, node] : nodes) {
      out += "--- " + name + "'s node ---\n" + (node->has_value() ? (*node)->log() : "(not running)\n");
    }
    for (Relay* r : relays) out += "--- " + r->name() + " ---\n" + r->log();
    return out;
  };

  // ---- 3. The owner posts; A and B read it.
  const std::string updateId = owner.kithJson({"post", firstUpdate}).at("id").get<std::string>();
  requireReads(friendA, firstUpdate, logs);
  requireReads(friendB, firstUpdate, logs);

  // ---- 4. The owner's node stops; A comments; B reads the comment through the relay.
  ownerNode->stop();
  ownerNode.reset();
  friendA.kithOk({"comment", updateId.substr(0, 10), commentA});
  requireReadsComment(friendB, firstUpdate, commentA, friendA.id(), logs);
  REQUIRE_FALSE(hasComment(owner.read(), firstUpdate, commentA));

  // ---- 5. The owner's node comes back and catches up.
  ownerNode.emplace(owner);
  requireReadsComment(owner, firstUpdate, commentA, friendA.id(), logs);

  // ---- 6. Friend C joins through an invite that names only the relay, while the owner serves.
  acceptThroughRelay(friendC, relayInvite(owner, relay1), journal, title, relay1);
  nodeC.emplace(friendC);
  requireReadsComment(friendC, firstUpdate, commentA, friendA.id(), logs);

  // Friend D asks while the owner's node is off: accept waits, and completes once it is back.
  {
    const std::string codeD = relayInvite(owner, relay1);
    ownerNode->stop();
    ownerNode.reset();
    const std::vector<std::string> args{"accept", codeD};
    std::unique_ptr<test::Process> accepting = friendD.start(args);
    bool waiting = accepting->waitForOutput("Waiting for the owner's node", kith::test::READY_TIMEOUT_MS);
    INFO("friend D's accept:\n" << accepting->output());
    REQUIRE(waiting);
    REQUIRE_FALSE(accepting->tryWait().has_value());
    ownerNode.emplace(owner);
    RunResult accepted = test::finished(*accepting, args, ACCEPT_TIMEOUT_MS);
    INFO(describe(accepted));
    test::requireNoCrash(accepted);
    REQUIRE(accepted.exitCode == 0);
    REQUIRE(contains(accepted.err, "Joined \"" + title + "\""));
    json list = friendD.kithJson({"journal", "list"});
    REQUIRE(list.size() == 1);
    REQUIRE(list[0].at("id") == journal);
    REQUIRE(hasText(friendD.read(), firstUpdate));
    REQUIRE(friendD.kithJson({"peers", "list"}).empty());
  }
  REQUIRE(owner.kithJson({"members"}).size() == 5);

  // ---- 7. The owner removes B and posts; A and C read it, B never does, and B's comment written
  // after the removal reaches nobody.
  {
    json revoked = owner.kithJson({"revoke", friendB.id().substr(0, 12)});
    REQUIRE(revoked.at("member") == friendB.id());
    REQUIRE(revoked.at("epoch") == 1);
  }
  const std::string afterId = owner.kithJson({"post", afterRemoval}).at("id").get<std::string>();
  requireReads(friendA, afterRemoval, logs);
  requireReads(friendC, afterRemoval, logs);
  // The old mailbox is closed at the relay (the owner's node rotated it away).
  REQUIRE(
      eventually(REPLICATION_TIMEOUT_MS, [&] { return relay1.status().at("mailboxes_closed").get<uint64_t>() >= 1; }));
  // B's node may not have read its removal yet: its person may comment, but the old mailbox
  // refuses it.
  RunResult lateComment = friendB.kith({"comment", updateId.substr(0, 10), commentB});
  INFO("the removed friend's comment: " << describe(lateComment));
  std::this_thread::sleep_for(std::chrono::milliseconds(REMOVED_WATCH_MS));
  {
    json entriesB = friendB.read();
    INFO("friend B:\n" << entriesB.dump(2) << "\n--- B's node ---\n" << nodeB->log());
    REQUIRE_FALSE(hasText(entriesB, afterRemoval));
    // Not even the sealed entry: nothing of the new epoch reached it.
    for (const auto& e : entriesB) REQUIRE(e.at("id") != afterId);
    REQUIRE(hasText(entriesB, firstUpdate));  // what it had stays readable to it
  }
  for (const Home* h : {&owner, &friendA, &friendC}) {
    json entries = h->read();
    INFO(h->name() << ":\n" << entries.dump(2));
    REQUIRE_FALSE(hasComment(entries, firstUpdate, commentB));
    REQUIRE(hasComment(entries, firstUpdate, commentA, friendA.id()));
  }
  // B's node reads the removal from the old mailbox (handed there before it was closed), so it
  // learns that it was removed: members and status say so, and a comment is refused at once.
  REQUIRE(eventually(REPLICATION_TIMEOUT_MS,
                     [&] { return contains(friendB.kithOk({"members"}).out, "You were removed"); }));
  CHECK(contains(friendB.kithOk({"status"}).out, "you were removed from this journal"));
  {
    RunResult refusedComment = friendB.kith({"comment", updateId.substr(0, 10), "one more"});
    INFO(describe(refusedComment));
    CHECK(refusedComment.exitCode == 1);
    CHECK(contains(refusedComment.err, "no longer a member"));
  }

  // ---- 8. A second relay, added later, catches up; then it alone carries the journal.
  Relay relay2("relay two");
  relays.push_back(&relay2);
  REQUIRE(owner.kithJson({"relay", "add", relay2.address(), relay2.key()}).at("added") == true);
  // The journal's entries as the owner's store holds them (LMDB is multi-process).
  auto journalEntries = [&]() {
    auto s = store::Store::open(cli::Home(owner.path()).storeDir());
    uint64_t total = 0;
    for (const auto& [author, seq] : s->versionVector(*tryKey32FromHex(journal))) total += seq;
    return total;
  };
  {
    const uint64_t entries = journalEntries();
    json last;
    bool caughtUp = eventually(REPLICATION_TIMEOUT_MS, [&] {
      last = relay2.status();
      return last.at("envelopes").get<uint64_t>() >= entries;
    });
    INFO("the journal holds " << entries << " entries; relay two:\n" << last.dump(2));
    REQUIRE(caughtUp);
  }
  // A and C learnt of the second relay (through the first) and reach it.
  for (const Home* h : {&friendA, &friendC}) {
    INFO(h->name());
    REQUIRE(eventually(REPLICATION_TIMEOUT_MS, [&] { return connectedTo(*h, relay2); }));
  }
  relay1.stop();
  friendA.kithOk({"comment", afterId.substr(0, 10), commentA2});
  requireReadsComment(friendC, afterRemoval, commentA2, friendA.id(), logs);
  requireReadsComment(owner, afterRemoval, commentA2, friendA.id(), logs);

  // No household's node ever had a peer: everything went through the relays.
  for (const Home* h : {&owner, &friendA, &friendB, &friendC}) {
    json status = h->kithJson({"status"});
    INFO(h->name() << ":\n" << status.dump(2));
    REQUIRE(status.at("peers") == 0);
    REQUIRE(status.at("reach").is_object());
    for (const auto& p : status["reach"].value("peers", json::array())) REQUIRE_FALSE(p.value("connected", false));
  }

  // ---- Everyone stops cleanly.
  std::string nodeLogs = nodeC->stop() + nodeB->stop() + nodeA->stop() + ownerNode->stop();
  relay2.stop();

  // ---- 9. The relays' homes hold no journal id, no member key, no title and no text (every file,
  // binary-safe: hex in either case, and the raw bytes).
  std::vector<std::pair<std::string, std::string>> secrets{{"journal id", journal}};
  for (const Home* h : {&owner, &friendA, &friendB, &friendC, &friendD}) {
    secrets.emplace_back(h->name() + "'s key", h->id());
  }
  std::vector<std::pair<std::string, std::string>> needles;
  for (const auto& [what, hex] : secrets) {
    needles.emplace_back(what + " (hex)", hex);
    needles.emplace_back(what + " (HEX)", upper(hex));
    needles.emplace_back(what + " (raw)", raw(hex));
  }
  for (const std::string& text : {title, firstUpdate, commentA, afterRemoval, commentB, commentA2}) {
    needles.emplace_back("text", text);
  }
  // The grep does see what a relay must keep: the id of the journal's current mailbox on it, raw.
  auto currentMailbox = [&](const Relay& r) {
    auto ownerStore = store::Store::open(cli::Home(owner.path()).storeDir());
    Key32 id = *tryKey32FromHex(journal);
    auto info = ownerStore->journal(id);
    REQUIRE(info.has_value());
    auto unlocked = crypto::openKeyFile(cli::Home(owner.path()).readKeyFile(), std::nullopt);
    crypto::SecretBuffer storageKey = unlocked.identity.deriveKey("kithstor", 1);
    auto epochKey = ownerStore->epochKey(id, info->epoch, storageKey.view());
    REQUIRE(epochKey.has_value());
    Key32 mailbox = protocol::journalMailboxKeys(epochKey->view(), id, info->epoch, *tryKey32FromHex(r.key())).id;
    return std::string(asChars(mailbox));
  };
  for (const Relay* r : {&relay1, &relay2}) {
    INFO(r->name() << "'s home holds the current mailbox's id");
    REQUIRE(anyFileContains(r->path(), currentMailbox(*r)));
  }
  for (const Relay* r : {&relay1, &relay2}) {
    for (const auto& [what, needle] : needles) {
      INFO(r->name() << "'s home: " << what << ": " << needle);
      REQUIRE_FALSE(anyFileContains(r->path(), needle));
      // Nor does the relay's log (kept beside its home).
      REQUIRE_FALSE(anyFileContains(r->dir(), needle));
    }
  }
  // Nor did any household log a text. (A member's own node names the journal's title in its
  // notices, "New comment from Ann in <title>", on that member's terminal: the title is not looked
  // for there.)
  for (const std::string& text : {firstUpdate, commentA, afterRemoval, commentB, commentA2}) {
    INFO(text);
    REQUIRE_FALSE(contains(nodeLogs, text));
  }
}
