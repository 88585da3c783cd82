// Whole-program tests of the everyday commands as someone who is not an engineer meets them:
// following a friend's journal (checked with the owner's node before anything is saved), stopping,
// forgetting a peer, naming a journal by its title, and the "Next:" hints after init and journal
// create. The real `kith` binary in temporary homes, through tests/support/kith-process.h.
#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/config.h"
#include "cli/context.h"
#include "tests/support/kith-process.h"

namespace {

using kith::test::contains;
using kith::test::describe;
using kith::test::KithHome;
using kith::test::KithServe;
using kith::test::lines;
using kith::test::readFile;
using kith::test::requireError;
using kith::test::RunResult;
using kith::test::startsWith;
using kith::test::TempDir;
using nlohmann::json;

// An address where nothing listens: port 1 on loopback refuses connections.
const std::string NOBODY = "127.0.0.1:1";

// The journals a home's config.json says it follows (none when the file is not there).
std::vector<std::string> followsIn(const KithHome& h) {
  std::string path = h.path() + "/config.json";
  std::vector<std::string> out;
  if (!std::filesystem::exists(path)) return out;
  json config = json::parse(readFile(path));
  if (config.contains("follows")) {
    for (const auto& f : config.at("follows")) out.push_back(f.at("journal").get<std::string>());
  }
  return out;
}

size_t peersOf(const KithHome& h) { return h.kithJson({"peers", "list"}).size(); }

// A mistyped copy of `id`: its first digit changed.
std::string mistyped(const std::string& id) {
  std::string out = id;
  out[0] = out[0] == '0' ? '1' : '0';
  return out;
}

// Ann owns two journals and runs her node; Bob was granted the first only.
struct Circle {
  KithHome ann{"Ann"};
  KithHome bob{"Bob"};
  std::string shared;  // "Mum's journey", shared with Bob
  std::string garden;  // not shared with Bob
  std::unique_ptr<KithServe> node;

  Circle() {
    shared = ann.kithJson({"journal", "create", "Mum's journey"}).at("id").get<std::string>();
    garden = ann.kithJson({"journal", "create", "Garden"}).at("id").get<std::string>();
    ann.kithOk({"post", "--journal", shared, "Home on Thursday"});
    ann.kithOk({"grant", bob.id(), "--journal", shared});
    node = std::make_unique<KithServe>(ann);
  }

  RunResult follow(const KithHome& who, const std::string& journal, const std::string& address, const std::string& key,
                   const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"follow", journal, "--peer", address, "--key", key};
    args.insert(args.end(), extra.begin(), extra.end());
    return who.kith(args);
  }
};

}  // namespace

TEST_CASE("follow of a journal the owner's node does not share with you exits 1 and saves nothing", "[cli]") {
  Circle c;
  SECTION("a journal the owner has not shared with you") {
    std::string line = requireError(c.follow(c.bob, c.garden, c.node->address(), c.ann.id()));
    CHECK(contains(line, "no journal " + c.garden.substr(0, 16)));
    CHECK(contains(line, "nothing saved"));
    CHECK(contains(line, "kith grant"));
  }
  SECTION("a mistyped journal id") {
    std::string line = requireError(c.follow(c.bob, mistyped(c.shared), c.node->address(), c.ann.id()));
    CHECK(contains(line, "check the journal id"));
  }
  SECTION("the key of another node") {
    KithHome carol("Carol");
    std::string line = requireError(c.follow(c.bob, c.shared, c.node->address(), carol.id()));
    CHECK(contains(line, "not the one with key " + carol.id().substr(0, 16)));
    CHECK(contains(line, "--key"));
  }
  SECTION("someone the owner never granted") {
    KithHome carol("Carol");
    std::string line = requireError(c.follow(carol, c.shared, c.node->address(), c.ann.id()));
    CHECK(contains(line, "refused you"));
    CHECK(contains(line, "kith accept CODE"));
    CHECK(followsIn(carol).empty());
    CHECK(peersOf(carol) == 0);
  }
  SECTION("an address where no node runs") {
    std::string line = requireError(c.follow(c.bob, c.shared, NOBODY, c.ann.id()));
    CHECK(contains(line, "could not reach " + NOBODY));
    CHECK(contains(line, "--anyway"));
  }
  SECTION("an id that is not an id") {
    std::string line = requireError(c.follow(c.bob, "kith-abcdef", c.node->address(), c.ann.id()), 2);
    CHECK(contains(line, "kith accept CODE"));
  }
  CHECK(followsIn(c.bob).empty());
  CHECK(peersOf(c.bob) == 0);
  CHECK(c.bob.kithJson({"journal", "list"}).empty());
}

TEST_CASE("follow --anyway saves an unchecked follow with a warning, and unfollow takes it back", "[cli]") {
  KithHome bob("Bob");
  KithHome ann("Ann");
  std::string journal(64, 'a');
  RunResult r = bob.kith({"follow", journal, "--peer", NOBODY, "--key", ann.id(), "--anyway"});
  INFO(describe(r));
  REQUIRE(r.exitCode == 0);
  auto warnings = lines(r.err);
  REQUIRE(warnings.size() == 1);
  CHECK(startsWith(warnings[0], "kith: warning: could not reach " + NOBODY));
  CHECK(contains(r.out, "kith unfollow " + journal.substr(0, 16)));
  CHECK(followsIn(bob) == std::vector<std::string>{journal});
  json peers = bob.kithJson({"peers", "list"});
  REQUIRE(peers.size() == 1);
  CHECK(peers[0].at("follows") == json::array({journal}));

  RunResult undo = bob.kithOk({"unfollow", journal.substr(0, 6)});
  CHECK(contains(undo.out, "No longer following journal " + journal.substr(0, 16)));
  CHECK(followsIn(bob).empty());
  CHECK(peersOf(bob) == 0);  // the mistaken address went with it
}

TEST_CASE("follow is quiet when it works: one line naming the journal, nothing on stderr", "[cli]") {
  Circle c;
  RunResult r = c.follow(c.bob, c.shared, c.node->address(), c.ann.id());
  INFO(describe(r));
  REQUIRE(r.exitCode == 0);
  CHECK(r.err.empty());  // no "refused an entry" lines from the first catch-up
  REQUIRE(lines(r.out).size() == 1);
  CHECK(contains(r.out, "Following \"Mum's journey\""));
  CHECK(contains(r.out, "kith read"));
  CHECK(kith::test::hasText(c.bob.read(), "Home on Thursday"));
  CHECK(followsIn(c.bob) == std::vector<std::string>{c.shared});
  CHECK(peersOf(c.bob) == 1);

  // Following again is as quiet.
  RunResult again = c.follow(c.bob, c.shared, c.node->address(), c.ann.id());
  INFO(describe(again));
  REQUIRE(again.exitCode == 0);
  CHECK(again.err.empty());
  CHECK(lines(again.out).size() == 1);
  CHECK(followsIn(c.bob) == std::vector<std::string>{c.shared});
}

TEST_CASE("unfollow by title or id: the follow and its node's address go, what was received stays", "[cli]") {
  Circle c;
  c.bob.kithOk({"follow", c.shared, "--peer", c.node->address(), "--key", c.ann.id()});

  RunResult r = c.bob.kithOk({"unfollow", "mum's journey"});
  CHECK(contains(r.out, "No longer following journal " + c.shared.substr(0, 16)));
  CHECK(contains(r.out, "stays in this home"));
  CHECK(followsIn(c.bob).empty());
  CHECK(peersOf(c.bob) == 0);
  CHECK(kith::test::hasText(c.bob.read(), "Home on Thursday"));

  std::string line = requireError(c.bob.kith({"unfollow", c.shared.substr(0, 8)}));
  CHECK(contains(line, "does not follow"));
  line = requireError(c.ann.kith({"unfollow", "Garden"}), 2);
  CHECK(contains(line, "your own"));
  line = requireError(c.bob.kith({"unfollow", "No such journal"}), 2);
  CHECK(contains(line, "kith journal list"));
}

TEST_CASE("peers remove forgets a peer by its key or a prefix, and says what still comes from it", "[cli]") {
  Circle c;
  KithHome carol("Carol");
  c.bob.kithOk({"peers", "add", "127.0.0.1:9", carol.id()});
  c.bob.kithOk({"follow", c.shared, "--peer", c.node->address(), "--key", c.ann.id()});
  REQUIRE(peersOf(c.bob) == 2);

  RunResult r = c.bob.kithOk({"peers", "remove", carol.id()});
  CHECK(contains(r.out, "Removed peer " + carol.id().substr(0, 16) + " at 127.0.0.1:9"));
  CHECK_FALSE(contains(r.out, "unfollow"));
  REQUIRE(peersOf(c.bob) == 1);

  r = c.bob.kithOk({"peers", "remove", c.ann.id().substr(0, 6)});
  CHECK(contains(r.out, "Removed peer " + c.ann.id().substr(0, 16)));
  CHECK(contains(r.out, "kith unfollow " + c.shared.substr(0, 16)));
  CHECK(peersOf(c.bob) == 0);
  CHECK(followsIn(c.bob) == std::vector<std::string>{c.shared});

  std::string line = requireError(c.bob.kith({"peers", "remove", c.ann.id().substr(0, 6)}));
  CHECK(contains(line, "no peer"));
  CHECK(contains(line, "kith peers list"));
  line = requireError(c.bob.kith({"peers", "remove", "Ann"}), 2);
  CHECK(contains(line, "not a peer's key"));
}

TEST_CASE("the --journal option takes a title: unique, any case, ambiguous ones listed, unknown ones refused",
          "[cli]") {
  KithHome h("Ann");
  std::string mum = h.kithJson({"journal", "create", "Mum's journey"}).at("id").get<std::string>();
  std::string first = h.kithJson({"journal", "create", "Garden"}).at("id").get<std::string>();
  std::string second = h.kithJson({"journal", "create", "Garden"}).at("id").get<std::string>();

  h.kithOk({"post", "--journal", "Mum's journey", "by its title"});
  h.kithOk({"post", "--journal", "MUM'S JOURNEY", "by its title, shouted"});
  json entries = h.kithJson({"read", "--journal", mum});
  CHECK(kith::test::hasText(entries, "by its title"));
  CHECK(kith::test::hasText(entries, "by its title, shouted"));

  std::string line = requireError(h.kith({"post", "--journal", "Garden", "which one?"}), 2);
  CHECK(contains(line, "2 journals are titled 'Garden'"));
  CHECK(contains(line, first.substr(0, 8)));
  CHECK(contains(line, second.substr(0, 8)));
  line = requireError(h.kith({"read", "--journal", "Holiday"}), 2);
  CHECK(contains(line, "'Holiday' is not a journal id or the title of a journal"));
  CHECK(contains(line, "kith journal list"));

  // The ambiguous title's journals by their ids: nothing went astray.
  CHECK_FALSE(kith::test::hasText(h.kithJson({"read", "--journal", first}), "which one?"));
  CHECK_FALSE(kith::test::hasText(h.kithJson({"read", "--journal", second}), "which one?"));
}

TEST_CASE("init says how to accept an invite and how to start a journal", "[cli]") {
  KithHome h("Bob", false);
  RunResult r = h.kithOk({"init", "--no-passphrase"});
  CHECK(contains(r.out, "kith accept CODE"));
  CHECK(contains(r.out, "kith journal create \"TITLE\""));
}

TEST_CASE("journal create suggests a post that works as typed, with --journal once there are two", "[cli]") {
  KithHome h("Ann");
  RunResult r = h.kithOk({"journal", "create", "Mum's journey"});
  CHECK(contains(r.out, "kith post \"TEXT\""));
  CHECK_FALSE(contains(r.out, "--journal"));
  h.kithOk({"post", "the first, as suggested"});

  r = h.kithOk({"journal", "create", "Garden"});
  static const std::regex SUGGESTED("kith post --journal ([0-9a-f]+) \"TEXT\"");
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, SUGGESTED));
  std::string prefix = m[1].str();
  h.kithOk({"post", "--journal", prefix, "the second, as suggested"});
  json garden = h.kithJson({"read", "--journal", "Garden"});
  CHECK(kith::test::hasText(garden, "the second, as suggested"));
  CHECK_FALSE(kith::test::hasText(garden, "the first, as suggested"));
  CHECK(contains(r.out, "kith invite --journal " + prefix));
}

TEST_CASE("Context::nodeRunning is true exactly while a serve holds the home's lock", "[cli]") {
  TempDir dir;
  std::string home = dir / "home";
  std::filesystem::create_directory(home);
  kith::cli::Context ctx(kith::cli::Options{home, false, false});
  CHECK_FALSE(ctx.nodeRunning());
  CHECK(contains(ctx.deliveryNote(), "kith serve"));
  {
    kith::cli::ServeLock lock(ctx.home());
    lock.setAddress("127.0.0.1:7400");
    CHECK(ctx.nodeRunning());
    CHECK(ctx.deliveryNote().empty());
  }
  CHECK_FALSE(ctx.nodeRunning());
}
