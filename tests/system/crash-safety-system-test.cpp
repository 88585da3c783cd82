// Whole-program tests of what `kith post` promises: once it printed an id and exited 0, the entry
// is in the store and stays there, whatever other kith processes die and whenever.
//
// - The store-opening window: a process parked (by an LD_PRELOAD hook) inside LMDB's
//   mdb_env_open, after the lock file was reset and before it was set from the data file, is
//   killed while a `kith post` waits to open the same store. Before the open lock, the post
//   printed its id, exited 0, and was gone (with the commit before it, for one parity of the
//   transaction id).
// - A seeded loop of concurrent `kith post` processes, killed with SIGKILL at random moments with
//   no `kith serve` holding the store open: every acknowledged post is readable afterwards and
//   the author's chain has no gap and no fork.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/kill-loop.h"
#include "tests/support/kith-process.h"
#include "tests/support/seed.h"

namespace {

using kith::test::describe;
using kith::test::kithBinary;
using kith::test::Process;
using kith::test::RunOptions;
using kith::test::RunResult;
using kith::test::TempDir;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int COMMAND_TIMEOUT_MS = 60000;
constexpr int PARK_TIMEOUT_MS = 20000;
// The SIGKILL loop: posters running at once, kills to reach, and a cap on spawns so a broken
// build cannot loop for ever.
constexpr size_t KILL_LOOP_POSTERS = 4;
constexpr size_t KILL_LOOP_KILLS = 300;
constexpr size_t KILL_LOOP_SPAWNS_MAX = 3000;

RunOptions childOptions() {
  RunOptions options = kith::test::kithOptions(COMMAND_TIMEOUT_MS);
  options.unsetEnv.push_back("LD_PRELOAD");
  return options;
}

RunResult kith(const std::string& home, const std::vector<std::string>& args) {
  return kith::test::runKith(home, args, childOptions());
}

json kithJson(const std::string& home, std::vector<std::string> args) {
  args.insert(args.begin(), "--json");
  RunResult r = kith(home, args);
  INFO(describe(r));
  REQUIRE(r.exitCode == 0);
  return json::parse(r.out);
}

// A home with an identity (no passphrase) and one journal.
std::string makeHome(const TempDir& dir) {
  std::string home = dir / "home";
  for (const std::vector<std::string>& args : {std::vector<std::string>{"init", "--no-passphrase", "--name", "Ann"},
                                               std::vector<std::string>{"journal", "create", "Mum's journey"}}) {
    RunResult r = kith(home, args);
    INFO(describe(r));
    REQUIRE(r.exitCode == 0);
  }
  return home;
}

std::string postId(const std::string& home, const std::string& text) {
  json j = kithJson(home, {"post", text});
  return j.at("id").get<std::string>();
}

// The ids `kith read --json` shows, and the author's seqs (to find gaps and forks).
struct Readback {
  std::set<std::string> ids;
  std::vector<uint64_t> seqs;
};

Readback readBack(const std::string& home) {
  Readback out;
  for (const auto& e : kithJson(home, {"read"})) {
    out.ids.insert(e.at("id").get<std::string>());
    out.seqs.push_back(e.at("seq").get<uint64_t>());
  }
  std::sort(out.seqs.begin(), out.seqs.end());
  return out;
}

// True when /proc/locks lists `pid` as waiting for a lock (a line with "->").
bool waitingForLock(int pid) {
  std::ifstream locks("/proc/locks");
  for (std::string line; std::getline(locks, line);) {
    if (line.find("->") == std::string::npos) continue;
    std::istringstream fields(line.substr(line.find("->") + 2));
    std::string kind, advisory, mode;
    int owner = 0;
    fields >> kind >> advisory >> mode >> owner;
    if (owner == pid) return true;
  }
  return false;
}

// The parked opener's environment: the hook, and a sanitizer runtime told not to insist on
// being first in the library list (the hook is).
RunOptions parkedOptions() {
  RunOptions options = childOptions();
  options.unsetEnv.erase(std::remove(options.unsetEnv.begin(), options.unsetEnv.end(), "LD_PRELOAD"),
                         options.unsetEnv.end());
  options.env["LD_PRELOAD"] = KITH_OPEN_WINDOW_HOOK;
  options.env["KITH_TEST_PARK_IN_OPEN"] = "1";
  const char* asan = std::getenv("ASAN_OPTIONS");
  options.env["ASAN_OPTIONS"] = std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0";
  return options;
}

}  // namespace

TEST_CASE("a post that waited while another process died inside the store's opening is kept", "[system][crash]") {
  // Both parities of the last transaction id: with one, LMDB's reset window lost only the
  // waiting post; with the other, the commit before it too.
  for (int extraPosts = 0; extraPosts < 2; ++extraPosts) {
    TempDir dir;
    std::string home = makeHome(dir);
    std::vector<std::string> acknowledged;
    for (int i = 0; i < 3 + extraPosts; ++i) acknowledged.push_back(postId(home, "before " + std::to_string(i)));

    // A process opening the store alone is LMDB's first opener: park it inside the window.
    std::vector<std::string> argv = {kithBinary(), "--home", home, "status"};
    Process parked(argv, parkedOptions());
    REQUIRE(parked.waitForOutput("open-window-hook: parked", PARK_TIMEOUT_MS));

    // A post arrives while it is there, and waits for it (LMDB's lock before the fix, ours after).
    Process poster({kithBinary(), "--home", home, "--json", "post", "the waiting post"}, childOptions());
    REQUIRE(kith::test::eventually(PARK_TIMEOUT_MS, [&] { return waitingForLock(poster.pid()); }));

    // The parked opener dies in the window; the post goes on.
    parked.stop(SIGKILL);
    REQUIRE(poster.stop(0, COMMAND_TIMEOUT_MS) == 0);
    json posted = json::parse(poster.output().substr(poster.output().find('{')));
    acknowledged.push_back(posted.at("id").get<std::string>());

    // A later post continues the same chain.
    acknowledged.push_back(postId(home, "after"));
    Readback back = readBack(home);
    for (const auto& id : acknowledged) {
      INFO("extra posts " << extraPosts << ", acknowledged post " << id);
      CHECK(back.ids.count(id) == 1);
    }
    std::vector<uint64_t> expected;
    for (uint64_t s = 1; s <= back.seqs.size(); ++s) expected.push_back(s);
    CHECK(back.seqs == expected);  // 1..n: no seq reused, none missing
  }
}

TEST_CASE("every post acknowledged by concurrent kith post processes survives 300 random SIGKILLs", "[system][crash]") {
  const uint64_t seed = kith::test::testSeed("kill loop");
  INFO("seed " << seed << " (set KITH_TEST_SEED to repeat)");

  TempDir dir;
  std::string home = makeHome(dir);

  // How long one post takes here (a sanitizer build is several times slower): kills land
  // anywhere from the process's start to a little past its usual end.
  auto t0 = Clock::now();
  std::set<std::string> acknowledged = {postId(home, "first")};
  auto oneRun = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();

  kith::test::KillTarget posts;
  posts.name = "post";
  posts.atOnce = KILL_LOOP_POSTERS;
  posts.killsWanted = KILL_LOOP_KILLS;
  posts.killChance = 0.75;
  posts.killWithin = std::chrono::microseconds(oneRun * 5 / 4);
  posts.options = childOptions();
  posts.argv = [&home](size_t i) {
    return std::vector<std::string>{kithBinary(), "--home", home, "--json", "post", "post " + std::to_string(i)};
  };
  TempDir scratch;
  auto figures = kith::test::KillLoop(seed, scratch.path()).run({&posts}, KILL_LOOP_SPAWNS_MAX);
  size_t exitedOk = 0;
  for (const auto& end : posts.ends) {
    if (end.killedByUs) continue;
    INFO("post output: " << end.output);
    REQUIRE(end.signal == 0);  // nothing else may end a post
    REQUIRE(end.exitCode == 0);
    acknowledged.insert(json::parse(end.output).at("id").get<std::string>());
    ++exitedOk;
  }
  const size_t kills = figures.kills;
  std::printf("kill loop: %zu spawns, %zu killed, %zu acknowledged\n", figures.spawns, kills, exitedOk);
  REQUIRE(kills >= KILL_LOOP_KILLS);

  // The store opens, every acknowledged post is there, and the chain is 1..n.
  acknowledged.insert(postId(home, "after the loop"));
  Readback back = readBack(home);
  size_t lost = 0;
  for (const auto& id : acknowledged) lost += back.ids.count(id) == 0 ? 1 : 0;
  CHECK(lost == 0);
  std::vector<uint64_t> expected;
  for (uint64_t s = 1; s <= back.seqs.size(); ++s) expected.push_back(s);
  CHECK(back.seqs == expected);
}
