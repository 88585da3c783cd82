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
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/subprocess.h"
#include "tests/support/temp-dir.h"

namespace {

using kith::test::anyFileContains;
using kith::test::Process;
using kith::test::RunOptions;
using kith::test::RunResult;
using kith::test::TempDir;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Deadlines, generous for an ASan build on a busy machine; a healthy run takes a fraction.
constexpr int COMMAND_TIMEOUT_MS = 30000;
constexpr int READY_TIMEOUT_MS = 20000;
constexpr int LIVE_UPDATE_TIMEOUT_MS = 10000;
constexpr int CATCH_UP_TIMEOUT_MS = 30000;
constexpr auto POLL_INTERVAL = std::chrono::milliseconds(50);
constexpr size_t BULK_POSTS = 500;
// Large enough that the bulk posts fill several push batches (node/limits.h: BATCH_BYTES_MAX is
// 1 MiB, BATCH_ENTRIES_MAX 512): a restarted node's catch-up then runs with pushes pipelined.
constexpr size_t BULK_TEXT_BYTES = 8 * 1024;
constexpr size_t POST_WORKERS = 4;

RunOptions childOptions() {
  RunOptions options;
  options.unsetEnv = {"KITH_HOME", "KITH_PASSPHRASE"};
  options.timeoutMs = COMMAND_TIMEOUT_MS;
  return options;
}

std::string describe(const RunResult& r) {
  return "exit " + std::to_string(r.exitCode) + ", signal " + std::to_string(r.signal) +
         (r.timedOut ? ", TIMED OUT" : "") + "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
}

bool hasSanitizerReport(const std::string& text) {
  return text.find("AddressSanitizer") != std::string::npos || text.find("LeakSanitizer") != std::string::npos ||
         text.find("runtime error") != std::string::npos;
}

void requireNoCrash(const RunResult& r) {
  INFO(describe(r));
  REQUIRE_FALSE(r.timedOut);
  REQUIRE(r.signal == 0);
  REQUIRE_FALSE(hasSanitizerReport(r.err));
}

// A failure is exit 1, nothing on stdout, and stderr ending in one line "kith: error: ...".
// Before it, only progress lines that start with `progressPrefix` ("sync: ") may appear, when given.
// Returns the error line without its newline.
std::string requireFailure(const RunResult& r, const std::string& progressPrefix = "") {
  requireNoCrash(r);
  INFO(describe(r));
  REQUIRE(r.exitCode == 1);
  REQUIRE(r.out.empty());
  REQUIRE_FALSE(r.err.empty());
  REQUIRE(r.err.back() == '\n');
  size_t lastStart = r.err.rfind('\n', r.err.size() - 2);
  lastStart = lastStart == std::string::npos ? 0 : lastStart + 1;
  std::string line = r.err.substr(lastStart, r.err.size() - 1 - lastStart);
  REQUIRE(line.rfind("kith: error: ", 0) == 0);
  for (size_t at = 0; at < lastStart; at = r.err.find('\n', at) + 1) {
    REQUIRE_FALSE(progressPrefix.empty());
    REQUIRE(r.err.compare(at, progressPrefix.size(), progressPrefix) == 0);
  }
  return line;
}

// One node's home in its own temporary directory.
class Home {
public:
  Home() {
    RunResult r = kith({"init", "--no-passphrase"});
    requireOk(r);
    id_ = json::parse(kithOk({"--json", "id"}).out).at("id").get<std::string>();
  }

  const std::string& id() const { return id_; }
  std::string shortId() const { return id_.substr(0, 8); }
  const std::string& dir() const { return dir_.path(); }
  std::string path() const { return dir_ / "home"; }

  RunResult kith(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{KITH_BIN, "--home", path()};
    argv.insert(argv.end(), args.begin(), args.end());
    return kith::test::run(argv, childOptions());
  }

  // Runs a command that must succeed; its stderr may carry progress lines, never a sanitizer report.
  RunResult kithOk(const std::vector<std::string>& args) const {
    RunResult r = kith(args);
    requireOk(r);
    return r;
  }

  json kithJson(const std::vector<std::string>& args) const {
    std::vector<std::string> withJson{"--json"};
    withJson.insert(withJson.end(), args.begin(), args.end());
    RunResult r = kithOk(withJson);
    INFO(r.out);
    return json::parse(r.out);
  }

  json read() const { return kithJson({"read"}); }

private:
  static void requireOk(const RunResult& r) {
    requireNoCrash(r);
    INFO(describe(r));
    REQUIRE(r.exitCode == 0);
  }

  TempDir dir_;
  std::string id_;
};

// A running `kith serve` on a loopback port the OS chose, read back from its log.
class Serve {
public:
  explicit Serve(const Home& home)
      : process_({KITH_BIN, "--home", home.path(), "serve", "--listen", "127.0.0.1:0"}, childOptions()) {
    bool listening = process_.waitForOutput("listening on 127.0.0.1:", READY_TIMEOUT_MS);
    INFO("--- serve's output ---\n" << process_.output());
    REQUIRE(listening);
    // The needle may have arrived before the rest of its line.
    static const std::regex LISTENING("listening on 127\\.0\\.0\\.1:([0-9]+)\n");
    std::smatch match;
    auto deadline = Clock::now() + std::chrono::milliseconds(READY_TIMEOUT_MS);
    std::string log;
    while (log = process_.output(), !std::regex_search(log, match, LISTENING)) {
      REQUIRE(Clock::now() < deadline);
      std::this_thread::sleep_for(POLL_INTERVAL);
    }
    port_ = std::stoi(match[1].str());
    REQUIRE(port_ > 0);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() { return process_.output(); }
  bool waitForLog(const std::string& needle) { return process_.waitForOutput(needle, READY_TIMEOUT_MS); }

  // Stops the node with `sig`; it must exit 0 after logging that it stopped. Returns the whole log.
  std::string stop(int sig) {
    int code = process_.stop(sig);
    std::string out = process_.output();
    INFO("signal " << sig << "\n--- log ---\n" << out);
    REQUIRE(code == 0);
    REQUIRE(out.find("stopping (signal " + std::to_string(sig) + ")") != std::string::npos);
    REQUIRE(out.find(" stopped\n") != std::string::npos);
    REQUIRE_FALSE(hasSanitizerReport(out));
    return out;
  }

private:
  Process process_;
  int port_ = 0;
};

bool containsText(const json& entries, const std::string& text) {
  for (const auto& e : entries) {
    if (e.at("text").is_string() && e.at("text").get<std::string>() == text) return true;
  }
  return false;
}

// Polls `condition` until it holds or the deadline passes.
template <typename Condition>
bool eventually(int timeoutMs, Condition&& condition) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(POLL_INTERVAL);
  }
}

// Posts every text with its own `kith post` process, several at once (concurrent writers to one
// store are part of what is tested). Assertions run on this thread once all have finished.
void postAll(const Home& home, const std::vector<std::string>& texts) {
  std::vector<RunResult> results(texts.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (size_t w = 0; w < POST_WORKERS; ++w) {
    workers.emplace_back([&home, &texts, &results, &next]() {
      for (size_t i = next++; i < texts.size(); i = next++) results[i] = home.kith({"post", texts[i]});
    });
  }
  for (auto& t : workers) t.join();
  for (const auto& r : results) {
    requireNoCrash(r);
    INFO(describe(r));
    REQUIRE(r.exitCode == 0);
  }
}

// The ids of a `read --json` list, in timeline order.
std::vector<std::string> idsOf(const json& entries) {
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.at("id").get<std::string>());
  return ids;
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
  const uint32_t seed = std::random_device{}();
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
    bool arrived = eventually(LIVE_UPDATE_TIMEOUT_MS, [&]() { return containsText(b.read(), sentence); });
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
    REQUIRE(containsText(b.read(), synced));
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
    for (const auto& text : bulk) REQUIRE(containsText(bEntries, text));
    bLog += bNode.stop(SIGINT);
  }

  // C was never granted: refused at the handshake, with a reason, and holding nothing.
  {
    RunResult r = family.follow(c, aNode);
    std::string line = requireFailure(r);
    CHECK(line.find("refused") != std::string::npos);
    CHECK(line.find("not a member") != std::string::npos);
    CHECK(line.find("kith grant") != std::string::npos);
    REQUIRE(c.kithJson({"journal", "list"}).empty());
    bool refusalLogged = aNode.waitForLog("refused peer " + c.shortId());
    INFO("A's log:\n" << aNode.log());
    REQUIRE(refusalLogged);
  }
  {
    RunResult r = c.kith({"sync", "--once"});
    std::string line = requireFailure(r, "sync: ");
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
      std::string line = requireFailure(lonely.kith(args));
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
    std::string line = requireFailure(family.friendNode.kith({"sync", "--once"}), "sync: ");
    CHECK(line.find("could not sync with any peer") != std::string::npos);
    // The friend keeps what it had.
    CHECK(family.friendNode.read().size() == 2);
  }
}
