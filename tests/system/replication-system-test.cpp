// Whole-system tests of replication: real `kith serve` processes in temporary homes on loopback
// ports the OS chooses, driven by one-shot `kith` commands as a family and their friends would
// run them. Readiness is explicit (the "listening on" log line, polling `kith read` against a
// deadline); nothing sleeps for a fixed time.
//
// Checked here: a granted friend's node gets updates live, stops cleanly, catches up after a
// restart and with `kith sync --once`, and ends with exactly the owner's entries; a stranger is
// refused at the handshake and holds nothing; no posted sentence is readable in any home's files
// or logs; every process exits cleanly (SIGINT, SIGTERM) without a sanitizer report.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/kith-process.h"
#include "tests/support/seed.h"

namespace {

using kith::test::anyFileContains;
using kith::test::describe;
using kith::test::eventually;
using kith::test::hasText;
using kith::test::idsOf;
using kith::test::requireError;
using kith::test::requireNoCrash;
using kith::test::RunResult;
using Home = kith::test::KithHome;
using Serve = kith::test::KithServe;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int LIVE_UPDATE_TIMEOUT_MS = 10000;
constexpr int CATCH_UP_TIMEOUT_MS = 30000;
constexpr size_t BULK_POSTS = 500;
// Large enough that the bulk posts fill several push batches (node/limits.h: BATCH_BYTES_MAX is
// 1 MiB, BATCH_ENTRIES_MAX 512): a restarted node's catch-up then runs with pushes pipelined.
constexpr size_t BULK_TEXT_BYTES = 8 * 1024;
constexpr size_t POST_WORKERS = 4;

// Posts every text with its own `kith post` process, several at once (concurrent writers to one
// store are part of what is tested). Assertions run on this thread once all have finished.
void postAll(const Home& home, const std::vector<std::string>& texts) {
  std::vector<RunResult> results(texts.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (size_t w = 0; w < POST_WORKERS; ++w) {
    workers.emplace_back([&home, &texts, &results, &next]() {
      for (size_t i = next++; i < texts.size(); i = next++) results[i] = home.runUnchecked({"post", texts[i]});
    });
  }
  for (auto& t : workers) t.join();
  for (const auto& r : results) {
    requireNoCrash(r);
    INFO(describe(r));
    REQUIRE(r.exitCode == 0);
  }
}

struct Family {
  Home owner;
  Home friendNode;
  std::string journal;

  Family() {
    journal = owner.kithJson({"journal", "create", "Mum's recovery"}).at("id").get<std::string>();
    json granted = owner.kithJson({"grant", friendNode.id()});
    REQUIRE(granted.at("role") == "subscriber");
  }

  RunResult follow(const Home& who, const Serve& ownerNode) const {
    return who.kith({"--json", "follow", journal, "--peer", ownerNode.address(), "--key", owner.id()});
  }
};

}  // namespace

TEST_CASE("a granted friend replicates live, across a restart and by sync - a stranger is refused", "[system]") {
  // The seed only makes the posted sentences unique to this run; printed with any failure.
  const uint64_t seed = kith::test::testSeed("replication system test");
  INFO("random seed: " << seed);
  const std::string sentence = "Mum's surgery went well, she is home on Thursday (" + std::to_string(seed) + ")";
  const std::string synced = "Meals this week: Anna on Monday, Joe on Wednesday (" + std::to_string(seed) + ")";
  Family family;
  const Home& a = family.owner;
  const Home& b = family.friendNode;
  Home c;  // never granted

  Serve aNode(a);

  // B follows: the first sync brings the journal (its creation and B's membership).
  RunResult followed = family.follow(b, aNode);
  {
    requireNoCrash(followed);
    INFO(describe(followed));
    REQUIRE(followed.exitCode == 0);
    json j = json::parse(followed.out);
    CHECK(j.at("held") == true);
    CHECK(j.at("received").get<uint64_t>() >= 2);
  }
  REQUIRE(idsOf(b.read()) == idsOf(a.read()));

  // Live: B serves (and dials A); A posts; B can read it within the deadline.
  std::string bLog;
  {
    Serve bNode(b);
    json posted = a.kithJson({"post", sentence});
    std::string postedId = posted.at("id").get<std::string>();
    bool arrived = eventually(LIVE_UPDATE_TIMEOUT_MS, [&]() { return hasText(b.read(), sentence); });
    INFO("B's log:\n" << bNode.log());
    REQUIRE(arrived);
    json bEntries = b.read();
    REQUIRE(idsOf(bEntries).back() == postedId);
    bLog += bNode.stop(SIGTERM);
  }

  // B's node is down: A posts; one `sync --once` brings it and exits 0.
  a.kithOk({"post", synced});
  {
    RunResult r = b.kith({"--json", "sync", "--once"});
    requireNoCrash(r);
    INFO(describe(r));
    REQUIRE(r.exitCode == 0);
    json j = json::parse(r.out);
    CHECK(j.at("peers_reached") == 1);
    CHECK(j.at("received") == 1);
    CHECK(j.at("failures").empty());
    REQUIRE(hasText(b.read(), synced));
  }

  // A posts many more while B is down; B restarts and catches up to exactly A's entries.
  std::vector<std::string> bulkPrefixes;
  std::vector<std::string> bulk;
  for (size_t i = 0; i < BULK_POSTS; ++i) {
    bulkPrefixes.push_back("Update " + std::to_string(i) + " of " + std::to_string(seed) + ":");
    std::string text = bulkPrefixes.back();
    while (text.size() < BULK_TEXT_BYTES) text += " the garden is full of tulips and nobody has watered them";
    bulk.push_back(text.substr(0, BULK_TEXT_BYTES));
  }
  auto postStart = Clock::now();
  postAll(a, bulk);
  auto postMs = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - postStart).count();
  INFO(BULK_POSTS << " posts took " << postMs << " ms");
  json aEntries = a.read();
  REQUIRE(aEntries.size() == 2 + 1 + 1 + BULK_POSTS);  // create, grant, sentence, synced, bulk
  {
    std::set<uint64_t> seqs;
    for (const auto& e : aEntries) seqs.insert(e.at("seq").get<uint64_t>());
    REQUIRE(seqs.size() == aEntries.size());  // concurrent posts never shared a seq
  }
  {
    Serve bNode(b);
    uint64_t held = 0;
    bool caughtUp = eventually(CATCH_UP_TIMEOUT_MS, [&]() {
      held = b.kithJson({"journal", "list"}).at(0).at("entries").get<uint64_t>();
      return held >= aEntries.size();
    });
    INFO("B holds " << held << " of " << aEntries.size() << "\nB's log:\n" << bNode.log());
    REQUIRE(caughtUp);
    json bEntries = b.read();
    REQUIRE(idsOf(bEntries) == idsOf(aEntries));
    // Everything B decrypts is what A wrote (texts, kinds, authors, times).
    REQUIRE(bEntries == aEntries);
    for (const auto& text : bulk) REQUIRE(hasText(bEntries, text));
    bLog += bNode.stop(SIGINT);
  }

  // C was never granted: refused at the handshake, with a reason, and holding nothing.
  {
    RunResult r = family.follow(c, aNode);
    std::string line = requireError(r);
    CHECK(line.find("refused") != std::string::npos);
    CHECK(line.find("not a member") != std::string::npos);
    CHECK(line.find("kith grant") != std::string::npos);
    REQUIRE(c.kithJson({"journal", "list"}).empty());
    bool refusalLogged = aNode.waitForLog("refused peer " + c.shortId());
    INFO("A's log:\n" << aNode.log());
    REQUIRE(refusalLogged);
  }
  {
    // The refused follow saved nothing: C is given A's address by hand to try a sync.
    c.kithOk({"peers", "add", aNode.address(), a.id()});
    RunResult r = c.kith({"sync", "--once"});
    std::string line = requireError(r, 1, "sync: ");
    CHECK(r.err.find("not a member") != std::string::npos);
    CHECK(line.find("could not sync with any peer") != std::string::npos);
    REQUIRE(c.kithJson({"journal", "list"}).empty());
  }

  std::string aLog = aNode.stop(SIGINT);

  // Nothing readable at rest or in the logs: the sentences are in no file of any home.
  for (const Home* home : {&a, &b, static_cast<const Home*>(&c)}) {
    INFO("home " << home->dir());
    CHECK_FALSE(anyFileContains(home->dir(), sentence));
    CHECK_FALSE(anyFileContains(home->dir(), synced));
    CHECK_FALSE(anyFileContains(home->dir(), bulkPrefixes.front()));
    CHECK_FALSE(anyFileContains(home->dir(), bulkPrefixes.back()));
  }
  CHECK(aLog.find(sentence) == std::string::npos);
  CHECK(bLog.find(sentence) == std::string::npos);
  CHECK(bLog.find(synced) == std::string::npos);
}

TEST_CASE("sync fails clearly with no peers and with an unreachable one", "[system]") {
  SECTION("no peers") {
    Home lonely;
    for (const char* once : {"--once", ""}) {
      std::vector<std::string> args{"sync"};
      if (*once != '\0') args.push_back(once);
      std::string line = requireError(lonely.kith(args));
      CHECK(line.find("knows no peers") != std::string::npos);
      CHECK(line.find("kith peers add") != std::string::npos);
    }
  }
  SECTION("the owner's node is down") {
    Family family;
    std::string address;
    {
      Serve aNode(family.owner);
      address = aNode.address();
      RunResult r = family.follow(family.friendNode, aNode);
      requireNoCrash(r);
      INFO(describe(r));
      REQUIRE(r.exitCode == 0);
      aNode.stop(SIGTERM);
    }
    family.owner.kithOk({"post", "posted while the friend cannot reach us"});
    std::string line = requireError(family.friendNode.kith({"sync", "--once"}), 1, "sync: ");
    CHECK(line.find("could not sync with any peer") != std::string::npos);
    // The friend keeps what it had.
    CHECK(family.friendNode.read().size() == 2);
  }
}
