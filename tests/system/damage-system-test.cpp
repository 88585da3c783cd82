// Whole-program tests of a damaged store: a home with one journal of 61 entries (updates,
// comments, hearts) is copied, the copy's data.mdb is damaged in a fixed list of seeded ways, and
// every everyday command runs on it. None may die of a signal or hang; each says what is wrong in
// at most one error line (and a warning per skipped entry); `read` succeeds only when it shows
// every entry that is not named as damaged; `check` finds what `read` would trip over.
//
// Targeted cases: one flipped byte inside one entry's stored value (found by its signature, which
// the store layer gives), and one timeline index row deleted with the store's LMDB wrapper.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "store/limits.h"
#include "store/lmdb.h"
#include "store/store.h"
#include "tests/support/kith-process.h"

namespace {

namespace fs = std::filesystem;
using kith::test::contains;
using kith::test::describe;
using kith::test::lines;
using kith::test::readFile;
using kith::test::requireComposed;
using kith::test::runKith;
using kith::test::RunResult;
using kith::test::startsWith;
using kith::test::TempDir;
using kith::test::writeFile;
using nlohmann::json;

constexpr size_t UPDATES = 30;
constexpr size_t COMMENTS = 20;
constexpr size_t HEARTS = 10;
constexpr size_t ENTRIES = 1 + UPDATES + COMMENTS + HEARTS;  // with the journal's genesis
constexpr size_t PAGE_BYTES = 4096;                          // LMDB's page on Linux x86-64 and arm64
constexpr size_t FLIPS_PER_CASE = 8;
constexpr size_t ID_PREFIX_CHARS = 12;  // as `read`'s warnings print ids

std::set<std::string> idsOf(const json& entries) {
  std::set<std::string> ids;
  for (const auto& e : entries) ids.insert(e["id"].get<std::string>());
  return ids;
}

// The id prefixes `read` warned about.
std::set<std::string> warnedIds(const std::string& err) {
  std::set<std::string> out;
  for (const auto& line : lines(err)) {
    const std::string lead = "kith: warning: entry ";
    if (startsWith(line, lead)) out.insert(line.substr(lead.size(), ID_PREFIX_CHARS));
  }
  return out;
}

// The pristine home, built once: 30 updates, 20 comments and 10 hearts in one journal.
struct Pristine {
  TempDir dir;
  std::string home = dir / "home";
  std::string journal;
  std::set<std::string> ids;
  std::vector<std::string> updates;

  Pristine() {
    auto ok = [&](std::vector<std::string> args) {
      RunResult r = runKith(home, args);
      INFO(describe(r));
      REQUIRE(r.exitCode == 0);
      return r.out;
    };
    ok({"init", "--no-passphrase"});
    journal = json::parse(ok({"--json", "journal", "create", "Damage drill"}))["id"];
    for (size_t i = 0; i < UPDATES; ++i) {
      updates.push_back(json::parse(ok({"--json", "post", "update " + std::to_string(i)}))["id"]);
    }
    for (size_t i = 0; i < COMMENTS; ++i) ok({"comment", updates[i % UPDATES], "comment " + std::to_string(i)});
    for (size_t i = 0; i < HEARTS; ++i) ok({"heart", updates[i]});
    ids = idsOf(json::parse(ok({"--json", "read"})));
    REQUIRE(ids.size() == ENTRIES);
  }

  // A copy of the home (without LMDB's lock file) in `to`.
  std::string copyTo(const TempDir& to) const {
    std::string copy = to / "home";
    fs::copy(home, copy, fs::copy_options::recursive);
    fs::remove(copy + "/store/lock.mdb");
    return copy;
  }
};

const Pristine& pristine() {
  static Pristine p;
  return p;
}

std::string dataFile(const std::string& home) { return home + "/store/data.mdb"; }

// Runs every everyday command on a damaged home and checks each says what is wrong composedly.
// Returns `check`'s result.
RunResult runEverything(const std::string& home) {
  const Pristine& p = pristine();
  for (std::vector<std::string> args :
       {std::vector<std::string>{"status"}, {"journal", "list"}, {"members"}, {"read"}}) {
    requireComposed(runKith(home, args));
  }
  std::vector<std::string> readArgs{"--json", "read"};
  RunResult read = runKith(home, readArgs);
  requireComposed(read);
  if (read.exitCode == 0) {
    // Exit 0 only with every entry shown that is not named as damaged.
    INFO(describe(read));
    std::set<std::string> shown = idsOf(json::parse(read.out));
    std::set<std::string> warned = warnedIds(read.err);
    for (const auto& id : p.ids) {
      INFO("entry " << id);
      CHECK((shown.contains(id) || warned.contains(id.substr(0, ID_PREFIX_CHARS))));
    }
    for (const auto& id : shown) CHECK(p.ids.contains(id));
  }
  std::vector<std::string> checkArgs{"check"};
  RunResult check = runKith(home, checkArgs);
  requireComposed(check);
  if (check.exitCode == 0) {
    // A store `check` calls healthy reads whole.
    INFO(describe(check));
    INFO(describe(read));
    CHECK(contains(check.out, "The store is healthy"));
    REQUIRE(read.exitCode == 0);
    CHECK(idsOf(json::parse(read.out)) == p.ids);
    CHECK(read.err.empty());
  }
  std::vector<std::string> postArgs{"post", "written after the damage"};
  RunResult post = runKith(home, postArgs);
  requireComposed(post);
  if (check.exitCode == 0) {
    // ... and takes the next write (LMDB's free-page list is checked too).
    INFO(describe(post));
    CHECK(post.exitCode == 0);
  }
  return check;
}

// Finds every copy of `needle` in `haystack` (LMDB keeps stale copies of pages it rewrote).
std::vector<size_t> offsetsOf(const std::string& haystack, const std::string& needle) {
  std::vector<size_t> out;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) {
    out.push_back(at);
  }
  return out;
}

}  // namespace

TEST_CASE("a pristine home checks healthy and its --json problem list is empty", "[system][damage]") {
  const Pristine& p = pristine();
  TempDir dir;
  std::string home = p.copyTo(dir);
  RunResult r = runKith(home, {"check"});
  INFO(describe(r));
  REQUIRE(r.exitCode == 0);
  CHECK(r.err.empty());
  CHECK(contains(r.out, "The store is healthy: 1 journal, " + std::to_string(ENTRIES) + " entries checked"));
  RunResult j = runKith(home, {"--json", "check", "--journal", p.journal.substr(0, 8)});
  INFO(describe(j));
  REQUIRE(j.exitCode == 0);
  CHECK(json::parse(j.out) == json::array());
}

TEST_CASE("one flipped byte inside one entry is named by check and skipped by read with one warning",
          "[system][damage]") {
  const Pristine& p = pristine();
  TempDir dir;
  std::string home = p.copyTo(dir);

  // The 20th entry of the owner (an update), found in the file by its signature.
  std::string damagedId, signature;
  {
    auto store = kith::store::Store::open(p.home + "/store");
    auto info = store->journals().at(0);
    auto e = store->entry(info.id, info.owner, 20);
    REQUIRE(e.has_value());
    damagedId = kith::toHex(e->id);
    signature.assign(reinterpret_cast<const char*>(e->signature.data()), e->signature.size());
  }
  std::string bytes = readFile(dataFile(home));
  std::vector<size_t> at = offsetsOf(bytes, signature);
  REQUIRE_FALSE(at.empty());
  for (size_t offset : at) bytes[offset + signature.size() / 2] ^= 0x01;
  writeFile(dataFile(home), bytes);

  RunResult check = runEverything(home);
  CHECK(check.exitCode == 1);
  CHECK(contains(check.out, damagedId.substr(0, ID_PREFIX_CHARS)));
  CHECK(contains(check.out, "fails verification"));

  RunResult checkJson = runKith(home, {"--json", "check"});
  REQUIRE(checkJson.exitCode == 1);
  json problems = json::parse(checkJson.out);
  REQUIRE(problems.is_array());
  bool named = false;
  for (const auto& pr : problems) named = named || (pr["kind"] == "entry-damaged" && pr["entry"] == damagedId);
  CHECK(named);

  // The post that runEverything made is the only entry besides the pristine ones.
  RunResult read = runKith(home, {"--json", "read"});
  INFO(describe(read));
  REQUIRE(read.exitCode == 0);
  std::vector<std::string> warnings = lines(read.err);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "kith: warning: entry " + damagedId.substr(0, ID_PREFIX_CHARS) +
                           "\u2026 is damaged and was skipped; run 'kith check'");
  std::set<std::string> shown = idsOf(json::parse(read.out));
  std::set<std::string> expected = p.ids;
  expected.erase(damagedId);
  for (const auto& id : expected) CHECK(shown.contains(id));
  CHECK_FALSE(shown.contains(damagedId));
  CHECK(shown.size() == ENTRIES);  // 60 pristine ones and the new post
}

TEST_CASE("a deleted timeline row makes read refuse in one line and check name the count mismatch",
          "[system][damage]") {
  const Pristine& p = pristine();
  TempDir dir;
  std::string home = p.copyTo(dir);
  {
    namespace st = kith::store;
    st::Env env(home + "/store", st::MAP_BYTES_INITIAL, st::TABLES_MAX);
    st::WriteTxn txn(env);
    st::Table timeline(txn, "timeline");
    kith::Bytes key;
    size_t row = 0;
    timeline.scan(txn, {}, [&](kith::ByteView k, kith::ByteView) {
      if (row++ == ENTRIES / 2) {
        key.assign(k.begin(), k.end());
        return false;
      }
      return true;
    });
    REQUIRE(key.size() == 32 + 8 + 32);
    REQUIRE(timeline.del(txn, key));
    txn.commit();
  }

  RunResult read = runKith(home, {"read"});
  INFO(describe(read));
  CHECK(read.exitCode == 1);
  CHECK(read.out.empty());
  REQUIRE(lines(read.err).size() == 1);
  CHECK(startsWith(read.err, "kith: error: journal " + p.journal.substr(0, 16) + " is damaged"));
  CHECK(contains(read.err, "kith check"));

  RunResult check = runKith(home, {"check"});
  INFO(describe(check));
  CHECK(check.exitCode == 1);
  CHECK(contains(check.out, "timeline index lists " + std::to_string(ENTRIES - 1) + " entries but its record counts " +
                                std::to_string(ENTRIES)));
  CHECK(contains(check.out, "missing from the timeline index"));
  CHECK(lines(check.err).size() == 1);
  CHECK(startsWith(check.err, "kith: error: the store has "));
  runEverything(home);
}

TEST_CASE("every command on a randomly damaged store ends in a line, never a signal", "[system][damage]") {
  const Pristine& p = pristine();
  const std::string original = readFile(dataFile(p.home));
  const size_t pages = original.size() / PAGE_BYTES;
  REQUIRE(pages > 4);
  enum class Damage { RANDOM_PAGE, ZEROED_PAGE, FLIPPED_BYTES };
  const std::vector<std::pair<Damage, uint32_t>> cases = {
      {Damage::RANDOM_PAGE, 1},   {Damage::RANDOM_PAGE, 2},    {Damage::RANDOM_PAGE, 3},    {Damage::RANDOM_PAGE, 4},
      {Damage::ZEROED_PAGE, 5},   {Damage::ZEROED_PAGE, 6},    {Damage::ZEROED_PAGE, 7},    {Damage::FLIPPED_BYTES, 8},
      {Damage::FLIPPED_BYTES, 9}, {Damage::FLIPPED_BYTES, 10}, {Damage::FLIPPED_BYTES, 11}, {Damage::FLIPPED_BYTES, 12},
  };
  for (const auto& [damage, seed] : cases) {
    std::cout << "damage-system-test: seed " << seed << std::endl;
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    // Pages 0 and 1 are LMDB's meta pages; damage lands among the tree's pages.
    std::uniform_int_distribution<size_t> pageOf(2, pages - 1);
    std::string bytes = original;
    size_t page = pageOf(rng);
    switch (damage) {
      case Damage::RANDOM_PAGE:
        for (size_t i = 0; i < PAGE_BYTES; ++i) bytes[page * PAGE_BYTES + i] = static_cast<char>(rng() & 0xff);
        break;
      case Damage::ZEROED_PAGE:
        std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(page * PAGE_BYTES), PAGE_BYTES, '\0');
        break;
      case Damage::FLIPPED_BYTES: {
        std::uniform_int_distribution<size_t> offsetOf(2 * PAGE_BYTES, bytes.size() - 1);
        for (size_t i = 0; i < FLIPS_PER_CASE; ++i) bytes[offsetOf(rng)] ^= static_cast<char>(1 + rng() % 255);
        break;
      }
    }
    INFO("page " << page);
    TempDir dir;
    std::string home = p.copyTo(dir);
    writeFile(dataFile(home), bytes);
    runEverything(home);
  }
}
