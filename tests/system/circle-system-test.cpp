// Whole-system test of circles: real `kith serve` processes in temporary homes on loopback ports
// the OS chooses, driven by the commands a family and their friends would type. The owner invites
// two friends with codes; they accept, read, comment and heart; the owner revokes one, who then
// neither receives nor can decrypt what is posted next. Every way an invite is refused (used,
// expired, mistyped, forged, cancelled) and every role refusal (a subscriber posting or inviting)
// is checked as the one-line error the person sees.
//
// Readiness is explicit: the "listening on" log line, and polling `kith read --json` (or `kith
// invite list`) against a deadline. The test process opens stores itself (LMDB is multi-process)
// only to check what the revoked friend's keys can and cannot open.
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/home.h"
#include "crypto/key-file.h"
#include "protocol/entry.h"
#include "protocol/invite.h"
#include "store/store.h"
#include "tests/support/kith-process.h"
#include "tests/support/seed.h"

namespace {

using kith::test::anyFileContains;
using kith::test::contains;
using kith::test::describe;
using kith::test::eventually;
using kith::test::hasText;
using kith::test::READY_TIMEOUT_MS;
using kith::test::requireRefusal;
using kith::test::RunResult;
using kith::test::showsReactions;
using Home = kith::test::KithHome;
using Serve = kith::test::KithServe;
using nlohmann::json;

constexpr int REPLICATION_TIMEOUT_MS = 15000;
// How long the revoked friend is watched after the remaining one has the new post (or until the
// owner's node logs the refusal).
constexpr int REVOKED_WATCH_MS = 3000;

// A home's identity, from its plain (--no-passphrase) key file, and its at-rest key.
kith::crypto::UnlockedKeyFile identityOf(const Home& h) {
  kith::cli::Home home(h.path());
  kith::Bytes file = home.readKeyFile();
  return kith::crypto::openKeyFile(file, std::nullopt);
}

bool hasEntry(const json& entries, const std::string& id) {
  for (const auto& e : entries) {
    if (e.at("id").get<std::string>() == id) return true;
  }
  return false;
}

// The code printed by `kith invite`: the first line of its text output.
std::string inviteCode(const Home& owner, const std::vector<std::string>& args) {
  // The long code: the test decodes it (the short one has its own test, short-invite-system-test).
  std::vector<std::string> argv{"invite", "--long"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = owner.kithOk(argv);
  std::string code = r.out.substr(0, r.out.find('\n'));
  INFO(r.out);
  REQUIRE(code.rfind("kith-", 0) == 0);
  return code;
}

// The same code with one symbol changed to another value (not an alias of it).
std::string mistype(const std::string& code) {
  std::string typo = code;
  size_t pos = typo.size() / 2;
  while (typo[pos] == '-') ++pos;
  typo[pos] = typo[pos] == 'x' ? 'y' : 'x';
  return typo;
}

}  // namespace

TEST_CASE("circles: friends join with invite codes, comment and heart - a revoked friend gets nothing new",
          "[system][circle]") {
  using namespace kith;
  uint64_t seed = kith::test::testSeed("circle system test (the seed only makes the posted sentences unique)");
  const std::string tag = " (" + std::to_string(seed) + ")";
  const std::string firstUpdate = "Mum's surgery went well, she is home on Thursday" + tag;
  const std::string comment = "So glad to hear it, we will bring soup on Friday" + tag;
  const std::string afterRevocation = "After revocation: the new treatment starts on Monday" + tag;
  const std::string title = "Mum's recovery" + tag;
  const std::string revokedComment = "Written after being removed from the circle" + tag;

  Home owner("owner"), friend1("friend one"), friend2("friend two"), stranger("stranger");
  const std::string journal = owner.kithJson({"journal", "create", title}).at("id").get<std::string>();
  Serve ownerNode(owner);
  const std::string address = ownerNode.address();

  // ---- Invites: one read from the text output, one from --json.
  const std::string code1 = inviteCode(owner, {"--address", address});
  json invite2 = owner.kithJson({"invite", "--address", address, "--role", "subscriber"});
  const std::string code2 = invite2.at("code").get<std::string>();
  REQUIRE(invite2.at("journal") == journal);
  REQUIRE(code1 != code2);

  // The code's secret is not in the owner's files; its hash (the invite's id) is.
  {
    protocol::InviteCode decoded = protocol::decodeInvite(code1);
    REQUIRE(toHex(decoded.node) == owner.id());
    REQUIRE(decoded.addresses.size() == 1);
    REQUIRE(decoded.addresses[0].host == "127.0.0.1");
    Key32 id = protocol::inviteId(decoded.secret);
    REQUIRE(anyFileContains(owner.path(), std::string(asChars(id))));
    REQUIRE_FALSE(anyFileContains(owner.path(), std::string(asChars(decoded.secret))));
  }

  // ---- Both friends accept; they join as subscribers and hold the journal.
  json accepted1 = friend1.kithJson({"accept", code1});
  REQUIRE(accepted1.at("journal") == journal);
  REQUIRE(accepted1.at("role") == "subscriber");
  REQUIRE(accepted1.at("title") == title);
  json list1 = friend1.kithJson({"journal", "list"});
  REQUIRE(list1.size() == 1);
  REQUIRE(list1[0].at("id") == journal);
  REQUIRE(list1[0].at("role") == "subscriber");
  REQUIRE(friend2.kithJson({"accept", code2}).at("journal") == journal);
  {
    json invites = owner.kithJson({"invite", "list"});
    REQUIRE(invites.size() == 2);
    for (const auto& i : invites) REQUIRE(contains(i.at("status").get<std::string>(), "used by"));
    json members = owner.kithJson({"members"});
    REQUIRE(members.size() == 3);
  }

  // Accepting made the owner's node a peer of each friend's: `serve` dials it.
  for (const Home* f : {&friend1, &friend2}) {
    json peers = f->kithJson({"peers", "list"});
    REQUIRE(peers.size() == 1);
    REQUIRE(peers[0].at("key") == owner.id());
    REQUIRE(peers[0].at("address") == address);
  }
  Serve friend1Node(friend1), friend2Node(friend2);

  // ---- The owner posts; both friends read it.
  const std::string updateId = owner.kithJson({"post", firstUpdate}).at("id").get<std::string>();
  for (const Home* f : {&friend1, &friend2}) {
    INFO(f->name());
    REQUIRE(eventually(REPLICATION_TIMEOUT_MS, [&] { return hasText(f->read(), firstUpdate); }));
  }

  // ---- One comments, the other hearts, by a prefix of the update's id; everyone sees both.
  friend1.kithOk({"comment", updateId.substr(0, 10), comment});
  friend2.kithOk({"heart", updateId.substr(0, 10)});
  for (const Home* h : {&owner, &friend1, &friend2}) {
    INFO(h->name());
    json last;
    bool seen = eventually(REPLICATION_TIMEOUT_MS, [&] {
      last = h->read();
      return showsReactions(last, firstUpdate, comment, friend1.id(), friend2.id());
    });
    INFO(last.dump(2));
    REQUIRE(seen);
  }

  // ---- The owner revokes friend two and posts again.
  json revoked = owner.kithJson({"revoke", friend2.id().substr(0, 12)});
  REQUIRE(revoked.at("member") == friend2.id());
  REQUIRE(revoked.at("epoch") == 1);
  // The revoked friend's node is not told (the removal is an entry it no longer gets), so it may
  // still let its person comment; whatever it does locally, nobody else gets that comment.
  RunResult lateComment = friend2.kith({"comment", updateId.substr(0, 10), revokedComment});
  INFO("the revoked friend's comment: " << describe(lateComment));
  const std::string afterId = owner.kithJson({"post", afterRevocation}).at("id").get<std::string>();
  REQUIRE(eventually(REPLICATION_TIMEOUT_MS, [&] { return hasText(friend1.read(), afterRevocation); }));
  // Friend two's node is connected and asking: watch it a while longer, until the owner's node has
  // refused it or the watch ends; it never gets the entry.
  eventually(REVOKED_WATCH_MS, [&] { return contains(ownerNode.log(), "no longer a member"); });
  json f2entries = friend2.read();
  REQUIRE_FALSE(hasEntry(f2entries, afterId));
  REQUIRE_FALSE(hasText(f2entries, afterRevocation));
  REQUIRE(hasText(f2entries, firstUpdate));  // what it had stays readable to it
  for (const Home* h : {&owner, &friend1}) {
    INFO(h->name());
    json entries = h->read();
    REQUIRE_FALSE(hasText(entries, revokedComment));
    REQUIRE(showsReactions(entries, firstUpdate, comment, friend1.id(), friend2.id()));
  }

  // ---- Even given the ciphertext, friend two's keys do not open it.
  {
    auto ownerStore = store::Store::open(cli::Home(owner.path()).storeDir());
    std::optional<protocol::Entry> after = ownerStore->entryById(*tryKey32FromHex(afterId));
    REQUIRE(after.has_value());
    REQUIRE(after->epoch == 1);
    auto journalId = *tryKey32FromHex(journal);

    auto f2 = identityOf(friend2);
    REQUIRE(toHex(f2.identity.publicKey()) == friend2.id());
    crypto::SecretBuffer f2StorageKey = f2.identity.deriveKey("kithstor", 1);
    auto f2Store = store::Store::open(cli::Home(friend2.path()).storeDir());
    size_t keysHeld = 0;
    for (uint32_t epoch = 0; epoch <= after->epoch + 1; ++epoch) {
      auto key = f2Store->epochKey(journalId, epoch, f2StorageKey.view());
      if (!key) continue;
      ++keysHeld;
      INFO("epoch " << epoch);
      REQUIRE_FALSE(protocol::openBody(*after, key->view()).has_value());
    }
    REQUIRE(keysHeld == 1);  // epoch 0's key: the friend did read before being revoked
    REQUIRE_FALSE(protocol::openBody(*after, f2StorageKey.view()).has_value());

    // The friend who stays opens it with the new key its store holds: the check above could fail.
    auto f1 = identityOf(friend1);
    crypto::SecretBuffer f1StorageKey = f1.identity.deriveKey("kithstor", 1);
    auto f1Store = store::Store::open(cli::Home(friend1.path()).storeDir());
    auto f1Key = f1Store->epochKey(journalId, 1, f1StorageKey.view());
    REQUIRE(f1Key.has_value());
    auto body = protocol::openBody(*after, f1Key->view());
    REQUIRE(body.has_value());
    REQUIRE(body->text == afterRevocation);
  }

  // ---- Refusals, each one line that says what happened.
  auto refused = [&](const char* what, const RunResult& r, const std::vector<std::string>& words) {
    INFO(what << "\n--- owner's log ---\n" << ownerNode.log());
    requireRefusal(r, words);
  };
  // A used code, by someone else.
  refused("a used code", stranger.kith({"accept", code1}), {"used", "expired", "no open invite"});
  // An expired code (the invite list shows it expired before it is tried).
  const std::string expiring = inviteCode(owner, {"--address", address, "--expires", "1s"});
  REQUIRE(eventually(READY_TIMEOUT_MS, [&] {
    for (const auto& i : owner.kithJson({"invite", "list"})) {
      if (i.at("status") == "expired") return true;
    }
    return false;
  }));
  refused("an expired code", stranger.kith({"accept", expiring}), {"expired", "no open invite"});
  // A mistyped code: refused before any connection.
  const std::string open = inviteCode(owner, {"--address", address});
  refused("a mistyped code", stranger.kith({"accept", mistype(open)}), {"mistyped"});
  // A forged code: a well-formed code for another node's key at the owner's address.
  {
    protocol::InviteCode forged;
    forged.node = crypto::Identity::generate().publicKey();
    forged.secret.resize(protocol::INVITE_SECRET_BYTES);
    crypto::randomBytes(forged.secret);
    forged.addresses.push_back({"127.0.0.1", static_cast<uint16_t>(std::stoi(address.substr(10)))});
    refused("a forged code", stranger.kith({"accept", protocol::encodeInvite(forged)}),
            {"not the one this invite is for"});
  }
  // A cancelled code.
  json cancelled = owner.kithJson({"invite", "--address", address});
  owner.kithOk({"invite", "cancel", cancelled.at("id").get<std::string>()});
  refused("a cancelled code", stranger.kith({"accept", cancelled.at("code").get<std::string>()}),
          {"used", "expired", "cancelled", "no open invite", "not known"});
  // None of those made the stranger a member (the owner and both friends, one removed, are all
  // there is), and the mistyped attempt did not spend the open code.
  REQUIRE(owner.kithJson({"members"}).size() == 3);
  REQUIRE(stranger.kithJson({"journal", "list"}).empty());
  REQUIRE(stranger.kithJson({"accept", open}).at("journal") == journal);
  // A subscriber cannot post, nor invite.
  refused("a subscriber's post", friend1.kith({"post", "A subscriber's update" + tag}), {"role", "not allow"});
  refused("a subscriber's invite", friend1.kith({"invite", "--address", address}), {"owner"});

  // ---- Everyone stops cleanly.
  std::string logs = friend2Node.stop() + friend1Node.stop() + ownerNode.stop();

  // ---- Nothing readable anywhere: no posted sentence in any file of any home, nor in any log.
  for (const Home* h : {&owner, &friend1, &friend2, &stranger}) {
    for (const std::string& text : {firstUpdate, comment, afterRevocation, title, revokedComment}) {
      INFO(h->name() << ": " << text);
      REQUIRE_FALSE(anyFileContains(h->dir(), text));
      // A member's own node names the journal's title in its notices ("New comment from Ann in
      // <title>") on that member's terminal; no text of an entry is ever logged.
      if (text != title) REQUIRE_FALSE(contains(logs, text));
    }
  }
}
