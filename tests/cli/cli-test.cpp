// Whole-program tests of the `kith` command: the real binary in temporary homes, checked by its exit
// code, its output (text and --json) and the files it leaves. Every failure must be exactly one
// stderr line "kith: error: <what>; <hint>" with exit code 1 (2 for usage), never a signal, a
// sanitizer report or a hang (each run has a deadline).
//
// The children never see the test runner's KITH_HOME or KITH_PASSPHRASE unless a test sets them,
// and their stdin is a pipe (or closed), never a terminal, so nothing can wait for a passphrase.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "crypto/key-file.h"
#include "tests/support/kith-process.h"

namespace {

using kith::test::anyFileContains;
using kith::test::contains;
using kith::test::describe;
using kith::test::kithBinary;
using kith::test::readFile;
using kith::test::requireError;
using kith::test::requireNoCrash;
using kith::test::RunOptions;
using kith::test::RunResult;
using kith::test::TempDir;
using kith::test::writeFile;
using nlohmann::json;

constexpr size_t TEXT_BYTES_MAX = 32 * 1024;  // protocol/limits.h
const std::string PASSPHRASE = "plum-orchard-7 lantern quietly";

const std::regex HEX_ID("[0-9a-f]{64}");
const std::regex FINGERPRINT("[0-9]{5} [0-9]{5} [0-9]{5} [0-9]{5}");

// Runs `kith ARGS...` with KITH_HOME and KITH_PASSPHRASE removed, then `env` applied.
RunResult kithRun(const std::vector<std::string>& args, RunOptions options = {}) {
  std::vector<std::string> argv{kithBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const char* name : {"KITH_HOME", "KITH_PASSPHRASE"}) {
    if (!options.env.contains(name)) options.unsetEnv.push_back(name);
  }
  if (options.timeoutMs == RunOptions{}.timeoutMs) options.timeoutMs = kith::test::COMMAND_TIMEOUT_MS;
  return kith::test::run(argv, options);
}

void requireOk(const RunResult& r) {
  requireNoCrash(r);
  INFO(describe(r));
  REQUIRE(r.exitCode == 0);
  REQUIRE(r.err.empty());
}

json parseJson(const RunResult& r) {
  requireOk(r);
  INFO(describe(r));
  json j = json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

unsigned modeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// A temporary home and the options every command in it runs with.
struct Home {
  Home() = default;
  // Another view of an existing home, with another passphrase (or none).
  explicit Home(std::string existing, std::optional<std::string> pass = std::nullopt)
      : path(std::move(existing)), passphrase(std::move(pass)) {}

  TempDir dir;
  std::string path = dir / "home";
  std::optional<std::string> passphrase;

  RunOptions options(const std::string& input = {}) const {
    RunOptions o;
    if (passphrase) o.env["KITH_PASSPHRASE"] = *passphrase;
    o.input = input;
    return o;
  }
  RunResult operator()(std::vector<std::string> args, const std::string& input = {}) const {
    args.insert(args.begin(), {"--home", path});
    return kithRun(args, options(input));
  }
  // Runs a command that must succeed and returns its stdout.
  std::string ok(const std::vector<std::string>& args, const std::string& input = {}) const {
    RunResult r = (*this)(args, input);
    requireOk(r);
    return r.out;
  }
  json okJson(std::vector<std::string> args, const std::string& input = {}) const {
    args.insert(args.begin(), "--json");
    return parseJson((*this)(args, input));
  }

  void initUnsealed() { ok({"init", "--no-passphrase"}); }
  void initSealed() {
    passphrase = PASSPHRASE;
    ok({"init"});
  }
  std::string createJournal(const std::string& title) const {
    json j = okJson({"journal", "create", title});
    REQUIRE(j["title"] == title);
    return j["id"].get<std::string>();
  }
  json read(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"read"};
    args.insert(args.end(), extra.begin(), extra.end());
    json j = okJson(args);
    REQUIRE(j.is_array());
    return j;
  }
};

std::vector<std::string> updateTexts(const json& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    if (e["kind"] == "update") out.push_back(e["text"].get<std::string>());
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// init

TEST_CASE("init --no-passphrase creates an unsealed identity in a private home", "[cli]") {
  Home h;
  std::string out = h.ok({"init", "--no-passphrase", "--name", "Ana"});
  std::smatch m;
  REQUIRE(std::regex_search(out, m, HEX_ID));
  std::string id = m.str();
  CHECK(std::regex_search(out, FINGERPRINT));
  CHECK(contains(out, "NOT encrypted"));
  CHECK(modeOf(h.path) == 0700);
  CHECK(modeOf(h.path + "/identity.key") == 0600);

  json j = h.okJson({"id"});
  CHECK(j["id"] == id);
  CHECK(j["sealed"] == false);
  CHECK(j["name"] == "Ana");
  CHECK(std::regex_match(j["fingerprint"].get<std::string>(), FINGERPRINT));
  CHECK(contains(out, j["fingerprint"].get<std::string>()));
}

TEST_CASE("init with KITH_PASSPHRASE seals the identity and its --json output parses", "[cli]") {
  Home h;
  h.passphrase = PASSPHRASE;
  // --json works after the subcommand as well as before it.
  json j = parseJson(h({"init", "--json"}));
  REQUIRE(j.is_object());
  CHECK(std::regex_match(j["id"].get<std::string>(), HEX_ID));
  CHECK(std::regex_match(j["fingerprint"].get<std::string>(), FINGERPRINT));
  CHECK(j["sealed"] == true);
  CHECK(modeOf(h.path) == 0700);
  CHECK(modeOf(h.path + "/identity.key") == 0600);

  // `id` and `status` need no passphrase: the public key is in the clear.
  Home locked(h.path);
  json id = locked.okJson({"id"});
  CHECK(id["id"] == j["id"]);
  CHECK(id["fingerprint"] == j["fingerprint"]);
  CHECK(id["sealed"] == true);
  json status = locked.okJson({"status"});
  CHECK(status["id"] == j["id"]);
  CHECK(status["sealed"] == true);
  CHECK(status["journals"] == 0);
}

TEST_CASE("init twice fails and leaves the identity as it was", "[cli]") {
  Home h;
  h.initUnsealed();
  std::string before = readFile(h.path + "/identity.key");
  std::string line = requireError(h({"init", "--no-passphrase"}), 1);
  CHECK(contains(line, "already has an identity"));
  h.passphrase = PASSPHRASE;
  requireError(h({"--json", "init"}), 1);
  CHECK(readFile(h.path + "/identity.key") == before);
}

TEST_CASE("init without a passphrase source is a usage error that says what to do", "[cli]") {
  Home h;
  // No KITH_PASSPHRASE and stdin is a pipe: nothing to ask on.
  std::string line = requireError(h({"init"}, "typed-into-a-pipe\n"), 2);
  CHECK(contains(line, "KITH_PASSPHRASE"));
  CHECK(contains(line, "--no-passphrase"));
  CHECK_FALSE(std::filesystem::exists(h.path + "/identity.key"));

  h.passphrase = "";
  line = requireError(h({"init"}), 1);
  CHECK(contains(line, "KITH_PASSPHRASE is empty"));
  CHECK_FALSE(std::filesystem::exists(h.path + "/identity.key"));
}

// ---------------------------------------------------------------------------------------------
// journals, post, read

TEST_CASE("journal create, list, post and read", "[cli]") {
  Home h;
  h.initUnsealed();
  std::string me = h.okJson({"id"})["id"];
  CHECK(contains(h.ok({"journal", "list"}), "No journals yet"));
  CHECK(h.okJson({"journal", "list"}) == json::array());

  std::string out = h.ok({"journal", "create", "Mum's recovery"});
  std::smatch m;
  REQUIRE(std::regex_search(out, m, HEX_ID));
  std::string journal = m.str();

  h.ok({"post", "Surgery went well; she is home on Thursday."});
  h.ok({"post", "-"}, "Line one of the update\nline two, with \xc3\xa9\xe2\x9c\xbf\n");

  SECTION("journal list, text and JSON") {
    std::string text = h.ok({"journal", "list"});
    CHECK(contains(text, journal.substr(0, 16)));
    CHECK(contains(text, "Mum's recovery"));
    CHECK(contains(text, "owner"));
    json list = h.okJson({"journal", "list"});
    REQUIRE(list.size() == 1);
    const json& j = list[0];
    for (const char* field : {"id", "title", "role", "members", "entries", "last_update"}) {
      INFO(field);
      CHECK(j.contains(field));
    }
    CHECK(j["id"] == journal);
    CHECK(j["title"] == "Mum's recovery");
    CHECK(j["role"] == "owner");
    CHECK(j["members"] == 1);
    CHECK(j["entries"].get<int>() >= 2);
    CHECK(
        std::regex_match(j["last_update"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  }

  SECTION("read as text shows the title and the updates") {
    std::string text = h.ok({"read"});
    CHECK(contains(text, "Mum's recovery"));
    CHECK(contains(text, "Surgery went well; she is home on Thursday."));
    CHECK(contains(text, "Line one of the update\n"));
    CHECK(contains(text, "line two, with \xc3\xa9\xe2\x9c\xbf\n"));
  }

  SECTION("read --json: entries with their fields, per-author increasing seqs") {
    json entries = h.read();
    REQUIRE(entries.size() >= 2);
    std::map<std::string, int64_t> lastSeq;
    for (const auto& e : entries) {
      INFO(e.dump());
      for (const char* field : {"id", "journal", "author", "seq", "time", "kind", "text"}) {
        INFO(field);
        REQUIRE(e.contains(field));
      }
      CHECK(std::regex_match(e["id"].get<std::string>(), HEX_ID));
      CHECK(e["journal"] == journal);
      CHECK(e["author"] == me);
      int64_t seq = e["seq"].get<int64_t>();
      auto [it, first] = lastSeq.try_emplace(e["author"].get<std::string>(), seq);
      if (!first) {
        CHECK(seq > it->second);
        it->second = seq;
      }
    }
    std::vector<std::string> updates = updateTexts(entries);
    REQUIRE(updates.size() == 2);
    CHECK(updates[0] == "Surgery went well; she is home on Thursday.");
    // stdin keeps inner newlines; the one trailing newline is dropped.
    CHECK(updates[1] == "Line one of the update\nline two, with \xc3\xa9\xe2\x9c\xbf");
  }

  SECTION("post --json says where the update went") {
    json j = h.okJson({"post", "a third update"});
    CHECK(j["journal"] == journal);
    CHECK(std::regex_match(j["id"].get<std::string>(), HEX_ID));
    json entries = h.read();
    CHECK(entries.back()["id"] == j["id"]);
    CHECK(entries.back()["seq"] == j["seq"]);
    CHECK(entries.back()["kind"] == "update");
  }
}

TEST_CASE("the --journal option: optional with one journal, required with two, prefixes, bad ids", "[cli]") {
  Home h;
  h.initUnsealed();
  std::string a = h.createJournal("First");
  h.ok({"post", "to the only journal"});
  std::string b = h.createJournal("Second");
  REQUIRE(a != b);

  std::string line = requireError(h({"post", "where does this go?"}), 2);
  CHECK(contains(line, "--journal"));
  line = requireError(h({"read"}), 2);
  CHECK(contains(line, "--journal"));

  // Full ids and unique prefixes (the first position where the two differ, plus a margin).
  size_t differ = 0;
  while (a[differ] == b[differ]) ++differ;
  size_t prefixLen = std::max<size_t>(4, differ + 1);
  h.ok({"post", "--journal", b, "to the second, by full id"});
  h.ok({"post", "--journal", a.substr(0, prefixLen), "to the first, by prefix"});
  h.ok({"post", "--journal=" + b.substr(0, prefixLen + 1), "to the second, by prefix"});
  CHECK(updateTexts(h.read({"--journal", a.substr(0, prefixLen)})) ==
        std::vector<std::string>{"to the only journal", "to the first, by prefix"});
  CHECK(updateTexts(h.read({"--journal", b})) ==
        std::vector<std::string>{"to the second, by full id", "to the second, by prefix"});

  // An id that is well formed but names no journal here.
  std::string unknown = a;
  for (char c : std::string("0123456789abcdef")) {
    if (c != a[0] && c != b[0]) {
      unknown[0] = c;
      break;
    }
  }
  line = requireError(h({"read", "--journal", unknown}), 1);
  CHECK(contains(line, "no journal"));
  line = requireError(h({"post", "--journal", unknown.substr(0, 8), "lost"}), 1);
  CHECK(contains(line, "no journal"));

  // Malformed ids are usage errors.
  for (std::string bad : {std::string("xyz!"), std::string("abc"), std::string(""), a + "0", std::string("zzzzzzzz"),
                          std::string("../../etc/passwd")}) {
    INFO("--journal '" << bad << "'");
    line = requireError(h({"read", "--journal", bad}), 2);
    CHECK(contains(line, "journal"));
  }

  // Nothing went astray.
  CHECK(updateTexts(h.read({"--journal", a})).size() == 2);
  CHECK(updateTexts(h.read({"--journal", b})).size() == 2);
}

TEST_CASE("post and read in a home without journals say to create one", "[cli]") {
  Home h;
  h.initUnsealed();
  std::string line = requireError(h({"post", "hello"}), 1);
  CHECK(contains(line, "journal create"));
  line = requireError(h({"read"}), 1);
  CHECK(contains(line, "journal create"));
}

// ---------------------------------------------------------------------------------------------
// Where the home is

TEST_CASE("KITH_HOME is the default home and --home overrides it", "[cli]") {
  TempDir dir;
  std::string envHome = dir / "from-env";
  std::string flagHome = dir / "from-flag";
  RunOptions withEnv;
  withEnv.env["KITH_HOME"] = envHome;

  requireOk(kithRun({"init", "--no-passphrase"}, withEnv));
  CHECK(std::filesystem::exists(envHome + "/identity.key"));
  requireOk(kithRun({"--home", flagHome, "init", "--no-passphrase"}, withEnv));
  CHECK(std::filesystem::exists(flagHome + "/identity.key"));

  json fromEnv = parseJson(kithRun({"--json", "id"}, withEnv));
  json fromFlag = parseJson(kithRun({"--json", "--home", flagHome, "id"}, withEnv));
  CHECK(fromEnv["id"] != fromFlag["id"]);
  json status = parseJson(kithRun({"--json", "status"}, withEnv));
  CHECK(status["home"] == envHome);
  CHECK(status["id"] == fromEnv["id"]);
  status = parseJson(kithRun({"--json", "--home", flagHome, "status"}, withEnv));
  CHECK(status["home"] == flagHome);

  SECTION("without KITH_HOME: $XDG_DATA_HOME/kith") {
    RunOptions xdg;
    xdg.env["XDG_DATA_HOME"] = dir / "xdg";
    requireOk(kithRun({"init", "--no-passphrase"}, xdg));
    CHECK(std::filesystem::exists(dir / "xdg/kith/identity.key"));
  }
  SECTION("without KITH_HOME and XDG_DATA_HOME: ~/.local/share/kith") {
    RunOptions home;
    home.unsetEnv = {"XDG_DATA_HOME"};
    home.env["HOME"] = dir / "user";
    requireOk(kithRun({"init", "--no-passphrase"}, home));
    CHECK(std::filesystem::exists(dir / "user/.local/share/kith/identity.key"));
  }
  SECTION("with no home variable at all: a usage error") {
    RunOptions none;
    none.unsetEnv = {"XDG_DATA_HOME", "HOME"};
    std::string line = requireError(kithRun({"status"}, none), 2);
    CHECK(contains(line, "--home"));
  }
}

TEST_CASE("a missing home or identity says to run kith init", "[cli]") {
  TempDir dir;
  const std::vector<std::vector<std::string>> commands = {
      {"id"}, {"status"}, {"read"}, {"post", "hello"}, {"journal", "list"}, {"journal", "create", "T"}};
  for (const std::string& home : {dir / "nowhere", dir.path()}) {  // absent, then present but empty
    for (const auto& command : commands) {
      std::vector<std::string> args{"--home", home};
      args.insert(args.end(), command.begin(), command.end());
      INFO("home " << home << ", command " << command[0]);
      std::string line = requireError(kithRun(args), 1);
      CHECK(contains(line, "kith init"));
    }
  }
  CHECK_FALSE(std::filesystem::exists(dir / "nowhere"));
}

// ---------------------------------------------------------------------------------------------
// Command-line usage

TEST_CASE("usage errors exit 2 and --help exits 0", "[cli]") {
  TempDir dir;
  std::string home = dir / "home";

  RunResult help = kithRun({"--help"});
  requireOk(help);
  CHECK(contains(help.out, "init"));
  CHECK(contains(help.out, "post"));
  CHECK(contains(help.out, "--home"));
  requireOk(kithRun({"post", "--help"}));

  std::string line = requireError(kithRun({"--home", home, "bogus"}), 2);
  CHECK(contains(line, "unknown command 'bogus'"));
  CHECK(contains(line, "kith --help"));
  line = requireError(kithRun({"--home", home, "--bogus", "status"}), 2);
  CHECK(contains(line, "--bogus"));
  line = requireError(kithRun({"--home", home, "status", "--bogus"}), 2);
  CHECK(contains(line, "--bogus"));
  line = requireError(kithRun({"--home", home, "journal", "bogus"}), 2);
  CHECK(contains(line, "unknown command 'bogus'"));
  CHECK(contains(line, "kith journal --help"));
  line = requireError(kithRun({"--home", home}), 2);
  CHECK(contains(line, "needs a command"));
  line = requireError(kithRun({"--home", home, "journal"}), 2);
  CHECK(contains(line, "needs a command"));
  requireError(kithRun({"--home", home, "post"}), 2);  // no TEXT
  requireError(kithRun({"--home", home, "post", "a", "b"}), 2);
  requireError(kithRun({"--home"}), 2);  // option without its value
  // What the user typed is quoted, but a newline in it does not break the one-line error.
  line = requireError(kithRun({"--home", home, "bo\ngus"}), 2);
  CHECK(contains(line, "bo\\x0agus"));
  requireError(kithRun({"--home", home, "--bo\ngus"}), 2);
  CHECK_FALSE(std::filesystem::exists(home));
  requireOk(kithRun({"--home", home, "init", "--no-passphrase"}));
  line = requireError(kithRun({"--home", home, "read", "--journal", "abcd\nef"}), 2);
  CHECK(contains(line, "'abcd\\x0aef' is not a journal id"));
}

// ---------------------------------------------------------------------------------------------
// Passphrases

TEST_CASE("a wrong or missing passphrase is refused with one clear line", "[cli]") {
  Home h;
  h.initSealed();
  h.createJournal("Dad's news");
  h.ok({"post", "before the wrong passphrase"});

  Home wrong(h.path, "not the passphrase");
  for (const auto& command : std::vector<std::vector<std::string>>{
           {"read"}, {"post", "written with the wrong passphrase"}, {"journal", "list"}, {"journal", "create", "X"}}) {
    INFO(command[0]);
    std::string line = requireError(wrong(command), 1);
    CHECK(line.rfind("kith: error: wrong passphrase; ", 0) == 0);
  }

  Home locked(h.path);  // no KITH_PASSPHRASE, stdin not a terminal
  for (const auto& command :
       std::vector<std::vector<std::string>>{{"read"}, {"post", "written without a passphrase"}, {"journal", "list"}}) {
    INFO(command[0]);
    std::string line = requireError(locked(command, "a passphrase on a pipe is not read\n"), 1);
    CHECK(contains(line, "KITH_PASSPHRASE"));
  }

  Home empty(h.path, "");
  CHECK(contains(requireError(empty({"read"}), 1), "KITH_PASSPHRASE is empty"));
  Home huge(h.path, std::string(1025, 'p'));
  CHECK(contains(requireError(huge({"read"}), 1), "longer than 1024 bytes"));

  CHECK(updateTexts(h.read()) == std::vector<std::string>{"before the wrong passphrase"});
  CHECK(h.okJson({"journal", "list"}).size() == 1);
}

TEST_CASE("init refuses a weak passphrase with one line saying why and what to do and makes no home", "[cli]") {
  struct Weak {
    std::string passphrase;
    const char* why;
  };
  for (const Weak& w : {Weak{"tulip", "too short"}, Weak{"aaaaaaaaaaaa", "too few different characters"},
                        Weak{"12/05/1950", "no letters"}, Weak{"Password2024!", "well-known password"}}) {
    INFO(w.passphrase);
    Home h;
    h.passphrase = w.passphrase;
    std::string line = requireError(h({"init"}), 1);
    CHECK(contains(line, w.why));
    CHECK(contains(line, "; choose"));
    CHECK_FALSE(contains(line, w.passphrase));
    CHECK_FALSE(std::filesystem::exists(h.path + "/identity.key"));
  }
}

TEST_CASE(
    "a key file sealed at the old interactive cost opens with any passphrase and is sealed again at the "
    "moderate cost",
    "[cli]") {
  using namespace kith::crypto;
  Home h;
  h.initUnsealed();
  h.createJournal("Before the upgrade");
  h.ok({"post", "written under the old key file"});
  // The same identity, sealed as an older kith did: the interactive cost, and a passphrase today's
  // rule would refuse (unlocking never judges it).
  const std::string keyFile = h.path + "/identity.key";
  const std::string oldPassphrase = "password1";
  UnlockedKeyFile plain = openKeyFile(kith::asBytes(readFile(keyFile)), std::nullopt);
  kith::Bytes old = writeKeyFile(plain.identity, plain.name, kith::asBytes(oldPassphrase), KEY_FILE_COST_INTERACTIVE);
  writeFile(keyFile, std::string(old.begin(), old.end()));
  REQUIRE(readKeyFileInfo(old).costOutdated());

  // A wrong passphrase leaves it as it was.
  requireError(Home(h.path, "not the passphrase")({"read"}), 1);
  REQUIRE(readFile(keyFile) == std::string(old.begin(), old.end()));

  h.passphrase = oldPassphrase;
  CHECK(updateTexts(h.read()) == std::vector<std::string>{"written under the old key file"});
  std::string resealed = readFile(keyFile);
  KeyFileInfo info = readKeyFileInfo(kith::asBytes(resealed));
  CHECK(info.sealed);
  CHECK(info.cost.opslimit == KEY_FILE_COST.opslimit);
  CHECK(info.cost.memlimit == KEY_FILE_COST.memlimit);
  CHECK_FALSE(info.costOutdated());
  CHECK(modeOf(keyFile) == 0600);
  UnlockedKeyFile reopened = openKeyFile(kith::asBytes(resealed), kith::asBytes(oldPassphrase));
  CHECK(reopened.identity.publicKey() == plain.identity.publicKey());
  CHECK(reopened.name == plain.name);

  // Once at today's cost, it is left alone.
  h.ok({"post", "written under the new key file"});
  CHECK(readFile(keyFile) == resealed);
  CHECK(updateTexts(h.read()) ==
        std::vector<std::string>{"written under the old key file", "written under the new key file"});
}

// ---------------------------------------------------------------------------------------------
// Bad text

TEST_CASE("posts over the size limit or not valid text are refused and store nothing", "[cli]") {
  Home h;
  h.initUnsealed();
  h.createJournal("Limits");
  h.ok({"post", "first"});
  h.ok({"post", std::string(TEXT_BYTES_MAX, 'a')});              // exactly at the limit
  h.ok({"post", "-"}, std::string(TEXT_BYTES_MAX, 'b') + "\n");  // at the limit, plus the newline
  json before = h.read();
  REQUIRE(updateTexts(before).size() == 3);

  SECTION("one byte over, as an argument") {
    std::string line = requireError(h({"post", std::string(TEXT_BYTES_MAX + 1, 'c')}), 1);
    CHECK(contains(line, "32768"));
  }
  SECTION("one byte over, on stdin") {
    std::string line = requireError(h({"post", "-"}, std::string(TEXT_BYTES_MAX + 1, 'c')), 1);
    CHECK(contains(line, "32768"));
  }
  SECTION("10 MiB on stdin fails fast without reading it all") {
    auto start = std::chrono::steady_clock::now();
    RunOptions o = h.options(std::string(10 << 20, 'd'));
    o.timeoutMs = 15000;
    RunResult r = kithRun({"--home", h.path, "post", "-"}, o);
    auto took = std::chrono::steady_clock::now() - start;
    std::string line = requireError(r, 1);
    CHECK(contains(line, "longer than the limit"));
    CHECK(took < std::chrono::seconds(10));
  }
  SECTION("multi-byte characters count as bytes") {
    std::string text;
    while (text.size() <= TEXT_BYTES_MAX) text += "\xe2\x9c\xbf";  // 3 bytes each
    requireError(h({"post", text}), 1);
  }
  SECTION("invalid UTF-8 on stdin") {
    std::string line = requireError(h({"post", "-"}, "caf\xc3 au lait\n"), 1);
    CHECK(contains(line, "UTF-8"));
    requireError(h({"post", "-"}, "\xff\xfe"), 1);
    requireError(h({"post", "-"}, "overlong \xc0\xaf slash"), 1);
    requireError(h({"post", "-"}, "surrogate \xed\xa0\x80"), 1);
  }
  SECTION("invalid UTF-8 as an argument") {
    std::string line = requireError(h({"post", "caf\xe9"}), 1);
    CHECK(contains(line, "UTF-8"));
  }
  SECTION("a NUL byte on stdin") {
    std::string line = requireError(h({"post", "-"}, std::string("before\0after", 12)), 1);
    CHECK(contains(line, "NUL"));
  }
  SECTION("an empty post") {
    requireError(h({"post", ""}), 2);
    requireError(h({"post", "-"}, ""), 2);
    requireError(h({"post", "-"}, "\n"), 2);
  }
  SECTION("a bad journal title") {
    requireError(h({"journal", "create", ""}), 2);
    requireError(h({"journal", "create", std::string(201, 't')}), 1);
    requireError(h({"journal", "create", "bad \xff title"}), 1);
    CHECK(h.okJson({"journal", "list"}).size() == 1);
  }

  CHECK(h.read() == before);
}

// ---------------------------------------------------------------------------------------------
// Damaged files

TEST_CASE("a damaged store gives one clear error, not a crash", "[cli]") {
  Home h;
  h.initUnsealed();
  h.createJournal("Fragile");
  h.ok({"post", "this will be lost"});
  std::string dataFile = h.path + "/store/data.mdb";
  REQUIRE(std::filesystem::exists(dataFile));
  size_t size = std::filesystem::file_size(dataFile);

  std::string garbage;
  SECTION("random bytes of the same size") {
    uint32_t x = 0x2545f491;
    for (size_t i = 0; i < size; ++i) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      garbage.push_back(static_cast<char>(x));
    }
  }
  SECTION("a short text file") { garbage = "this is not an LMDB file\n"; }
  SECTION("a page of 0xff") { garbage = std::string(16384, '\xff'); }
  writeFile(dataFile, garbage);

  for (const auto& command : std::vector<std::vector<std::string>>{
           {"read"}, {"post", "after the damage"}, {"journal", "list"}, {"status"}, {"journal", "create", "T"}}) {
    INFO(command[0]);
    requireError(h(command), 1);
  }
}

TEST_CASE("a damaged key file gives one clear error, not a crash", "[cli]") {
  Home h;
  h.initUnsealed();
  h.createJournal("Keys");
  h.ok({"post", "signed with the good key"});
  std::string keyFile = h.path + "/identity.key";
  std::string good = readFile(keyFile);
  REQUIRE(good.size() > 77);

  std::string damaged;
  SECTION("empty") { damaged = ""; }
  SECTION("truncated in the header") { damaged = good.substr(0, 20); }
  SECTION("truncated in the payload") { damaged = good.substr(0, good.size() - 5); }
  SECTION("one more byte") { damaged = good + "x"; }
  SECTION("a flipped byte in the magic") {
    damaged = good;
    damaged[0] ^= 0x01;
  }
  SECTION("an unknown mode") {
    damaged = good;
    damaged[8] = 7;
  }
  SECTION("a flipped byte in the secret seed") {
    damaged = good;
    damaged[77 + 3] ^= 0x40;
  }
  SECTION("a flipped byte in the public key") {
    damaged = good;
    damaged[41 + 3] ^= 0x40;
  }
  SECTION("a wrong name length") {
    damaged = good;
    damaged[77 + 32 + 1] ^= 0x01;
  }
  SECTION("too large") { damaged = good + std::string(8192, 'z'); }
  writeFile(keyFile, damaged);

  for (const auto& command :
       std::vector<std::vector<std::string>>{{"read"}, {"post", "with a damaged key"}, {"journal", "list"}, {"id"}}) {
    INFO(command[0]);
    RunResult r = h(command);
    // `id` reads only the public key: some damage it cannot see (it must not crash either).
    if (command[0] == "id" && r.exitCode == 0) {
      requireOk(r);
      continue;
    }
    std::string line = requireError(r, 1);
    CHECK(contains(line, "key file"));
  }

  // Putting the good file back restores everything.
  writeFile(keyFile, good);
  CHECK(updateTexts(h.read()) == std::vector<std::string>{"signed with the good key"});
}

TEST_CASE("a damaged sealed key file is refused", "[cli]") {
  Home h;
  h.initSealed();
  std::string keyFile = h.path + "/identity.key";
  std::string good = readFile(keyFile);

  std::string damaged = good;
  SECTION("a flipped byte in the sealed payload") { damaged[good.size() - 20] ^= 0x01; }
  SECTION("a flipped byte in the salt") { damaged[25] ^= 0x01; }
  SECTION("implausible passphrase parameters") {
    for (size_t i = 9; i < 25; ++i) damaged[i] = '\xff';
  }
  SECTION("truncated") { damaged.resize(good.size() / 2); }
  writeFile(keyFile, damaged);
  // A damaged sealed payload cannot be told from a wrong passphrase; either way it is one line.
  requireError(h({"journal", "list"}), 1);
}

// ---------------------------------------------------------------------------------------------
// Property 1: nothing readable at rest

TEST_CASE("no file in the home holds a posted sentence, a title or the passphrase", "[cli]") {
  const std::string title = "Grandma Rosalind's hip surgery diary";
  const std::string sentence = "The quiet heron crossed Willowbrook pond at 7:42 this morning";
  const std::string fromStdin = "Zebra marmalade onboard the 11:15 ferry to Inisheer";
  const std::string name = "Rosalind Featherstonehaugh";

  bool sealed = GENERATE(false, true);
  INFO((sealed ? "sealed" : "unsealed") << " identity");
  Home h;
  if (sealed) {
    h.passphrase = PASSPHRASE;
    h.ok({"init", "--name", name});
  } else {
    h.ok({"init", "--no-passphrase"});
  }
  h.createJournal(title);
  h.ok({"post", sentence});
  h.ok({"post", "-"}, fromStdin + "\n");

  // The home really holds what was posted (so the greps below can fail).
  json list = h.okJson({"journal", "list"});
  REQUIRE(list[0]["title"] == title);
  REQUIRE(updateTexts(h.read()) == std::vector<std::string>{sentence, fromStdin});
  REQUIRE(anyFileContains(h.path, "KITHKEY1"));

  CHECK_FALSE(anyFileContains(h.path, sentence));
  CHECK_FALSE(anyFileContains(h.path, "Willowbrook"));
  CHECK_FALSE(anyFileContains(h.path, fromStdin));
  CHECK_FALSE(anyFileContains(h.path, "Inisheer"));
  CHECK_FALSE(anyFileContains(h.path, title));
  CHECK_FALSE(anyFileContains(h.path, "Rosalind"));
  CHECK_FALSE(anyFileContains(h.path, PASSPHRASE));
  CHECK_FALSE(anyFileContains(h.path, "lantern"));
}

TEST_CASE("text from a member cannot drive the reader's terminal: control characters are shown, not obeyed", "[cli]") {
  Home h;
  h.initUnsealed();
  // Clear the screen and set the window's title in the journal's title, an update and a comment;
  // an 8-bit CSI (U+009B) and a right-to-left override (U+202E) too. All are valid UTF-8 text.
  const std::string clear = "\x1b[2J\x1b[H";
  const std::string windowTitle = "\x1b]0;pwned\x07";
  const std::string c1 =
      "\xc2\x9b"
      "31m";
  const std::string rlo = "\xe2\x80\xae";
  h.createJournal("Mum" + clear + "'s journey");
  json posted = h.okJson({"post", "line one" + windowTitle + "\nline two" + c1 + rlo + "\ttabbed"});
  h.ok({"comment", posted["id"].get<std::string>(), "get well" + clear});

  std::string shown = h.ok({"read"}) + h.ok({"journal", "list"});
  for (const std::string& raw :
       {std::string("\x1b"), std::string("\x07"), std::string("\xc2\x9b"), rlo, std::string("\t")}) {
    INFO("raw bytes " << kith::toHex(kith::asBytes(raw)));
    CHECK(shown.find(raw) == std::string::npos);
  }
  // What was written is still there, visibly.
  CHECK(contains(shown, "Mum\\x1b[2J\\x1b[H's journey"));
  CHECK(contains(shown, "line one\\x1b]0;pwned\\x07"));
  CHECK(contains(shown, "line two\\u{009b}31m\\u{202e}\\x09tabbed"));
  CHECK(contains(shown, "get well\\x1b[2J"));
  // Newlines still break lines, and --json keeps the exact text (JSON escapes it).
  CHECK(contains(shown, "\n  line two"));
  json read = h.read();
  bool exact = false;
  for (const auto& e : read)
    exact = exact || e.value("text", json()) == json("line one" + windowTitle + "\nline two" + c1 + rlo + "\ttabbed");
  CHECK(exact);
}
