// Whole-program tests: the real `kith` binary run in temporary homes, and the checks every such
// test makes on what a command did (no crash, no sanitizer report, failures in one line).
//
//   KithHome owner("owner");                    // `kith init --no-passphrase --name owner`
//   KithServe node(owner);                      // `kith serve` on a port the OS chose
//   json entries = owner.kithJson({"read"});    // must exit 0
//   std::string line = requireError(stranger.kith({"accept", code}));
//   KithRelay relay("relay");                   // `kith relay init`, then `kith relay serve`
//   owner.kithOk({"relay", "add", relay.address(), relay.key()});
//
// Readiness is explicit: the "listening on" log line, and `eventually` (polling a condition
// against a deadline); nothing sleeps for a fixed time.
//
// Caveats:
// - KITH_BIN (the binary's path) is compiled into this file; only cli/ and system/ tests, which
//   build `kith` first, should run anything from here.
// - Children never see the runner's KITH_HOME or KITH_PASSPHRASE unless a test sets them.
#pragma once
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/subprocess.h"
#include "tests/support/temp-dir.h"

namespace kith::test {

// Deadlines, generous for an ASan build on a busy machine; a healthy run takes a fraction.
constexpr int COMMAND_TIMEOUT_MS = 30000;
constexpr int READY_TIMEOUT_MS = 20000;
constexpr auto POLL_INTERVAL = std::chrono::milliseconds(50);

// The `kith` binary under test.
const char* kithBinary();

// Options for a `kith` child: KITH_HOME and KITH_PASSPHRASE removed, a deadline of `timeoutMs`.
RunOptions kithOptions(int timeoutMs = COMMAND_TIMEOUT_MS);

// Runs `kith --home HOME ARGS...` to its end (or its deadline).
RunResult runKith(const std::string& home, const std::vector<std::string>& args,
                  const RunOptions& options = kithOptions());

// What ran and how it ended, with its whole stdout and stderr: for INFO.
std::string describe(const RunResult& r);

bool contains(const std::string& haystack, const std::string& needle);
bool startsWith(const std::string& text, const std::string& prefix);
// The lines of `text`, without their newlines.
std::vector<std::string> lines(const std::string& text);

bool hasSanitizerReport(const std::string& text);

// Not killed, not hung, no sanitizer report on either stream, no "internal error".
void requireNoCrash(const RunResult& r);

// A failure: exit `exitCode`, nothing on stdout, and stderr ending in one line "kith: error: ...".
// Before it, only progress lines starting with `progressPrefix` ("sync: ") may appear, when one
// is given; otherwise the error is the only line. Returns the error line without its newline.
std::string requireError(const RunResult& r, int exitCode = 1, const std::string& progressPrefix = "");

// requireError (exit 1, one line) whose line mentions at least one of `words`. Returns the line.
std::string requireRefusal(const RunResult& r, const std::vector<std::string>& words);

// Ended composedly, whatever the outcome: no crash, exit 0 or 1, and stderr only
// "kith: warning: ..." lines and (exactly when it exited 1) one "kith: error: ..." line.
void requireComposed(const RunResult& r);

// Polls `condition` every POLL_INTERVAL until it holds or `timeoutMs` have passed.
template <typename Condition>
bool eventually(int timeoutMs, Condition&& condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(POLL_INTERVAL);
  }
}

// What `kith read --json` shows: the entry with this text, if there; whether there is one; the
// entries' ids in timeline order.
std::optional<nlohmann::json> entryWithText(const nlohmann::json& entries, const std::string& text);
bool hasText(const nlohmann::json& entries, const std::string& text);
std::vector<std::string> idsOf(const nlohmann::json& entries);
// True when the update `updateText` shows `commentText` by `commenter` and exactly one heart, by
// `hearter`.
bool showsReactions(const nlohmann::json& entries, const std::string& updateText, const std::string& commentText,
                    const std::string& commenter, const std::string& hearter);

// One person's node: a home in its own temporary directory, made by `kith init` (with
// KITH_PASSPHRASE when `passphrase` is given, else --no-passphrase) unless `init` is false, as for
// a home that a restore is to make. Every command run through it is checked by requireNoCrash.
class KithHome {
public:
  explicit KithHome(std::string name = "", bool init = true, std::optional<std::string> passphrase = std::nullopt);

  const std::string& name() const { return name_; }
  const std::string& id() const { return id_; }  // hex public key ("" when not initialised)
  std::string shortId() const { return id_.substr(0, 8); }
  const std::string& dir() const { return dir_.path(); }  // the temporary directory around the home
  std::string path() const { return dir_ / "home"; }

  RunResult kith(const std::vector<std::string>& args) const;
  // The same command without any Catch assertion: safe to call from several threads at once
  // (Catch2 is not thread-safe); check the results on the test's own thread afterwards.
  RunResult runUnchecked(const std::vector<std::string>& args) const;
  // A command that must exit 0 (its stderr may carry progress lines).
  RunResult kithOk(const std::vector<std::string>& args) const;
  // The command left running (a `kith accept` that waits), its stdout and stderr in one stream;
  // check it with finished() when it has ended.
  std::unique_ptr<Process> start(const std::vector<std::string>& args) const;
  // `kith --json ARGS...`, which must exit 0; its stdout parsed.
  nlohmann::json kithJson(const std::vector<std::string>& args) const;
  nlohmann::json read() const { return kithJson({"read"}); }

private:
  std::string name_;
  std::optional<std::string> passphrase_;
  TempDir dir_;
  std::string id_;
};

// A running `kith serve` of `home` on a loopback port the OS chose, read back from its log; its web
// page on another such port (HOME/web-address says which).
class KithServe {
public:
  explicit KithServe(const KithHome& home);

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  std::string log() { return process_.output(); }
  bool waitForLog(const std::string& needle) { return process_.waitForOutput(needle, READY_TIMEOUT_MS); }

  // Stops the node with `sig`; it must exit 0 after logging that it stopped, with no sanitizer
  // report. Returns its whole log.
  std::string stop(int sig = SIGTERM);

private:
  Process process_;
  uint16_t port_ = 0;
};

// A command started with KithHome::start, once it has exited (or after `timeoutMs`, when it is
// killed and reported as timed out): what ran, its exit, and its output (stdout and stderr
// together, in `err`), for requireNoCrash and the test's own checks.
RunResult finished(Process& process, const std::vector<std::string>& argv, int timeoutMs);

// A relay for others: `kith relay init` in its own temporary home (a relay's home, apart from any
// household's), then `kith relay serve --listen 127.0.0.1:0`, its port read from the "listening
// on" line. Its key comes from init's --json output. Every command run through it is checked by
// requireNoCrash. The serve's log goes to a file beside the home (dir()/relay.log), not in it.
class KithRelay {
public:
  // `initArgs` are added to `kith relay init` (e.g. {"--admission", "token"}); with `serve` false
  // the relay is made but not started (start() does it).
  explicit KithRelay(std::string name = "relay", const std::vector<std::string>& initArgs = {}, bool serve = true);
  ~KithRelay();
  KithRelay(const KithRelay&) = delete;
  KithRelay& operator=(const KithRelay&) = delete;

  const std::string& name() const { return home_.name(); }
  const std::string& key() const { return key_; }         // the relay's public key, hex
  const std::string& dir() const { return home_.dir(); }  // around the home (the log is here)
  std::string path() const { return home_.path(); }       // the relay's home
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  bool running() const { return process_ != nullptr; }

  // `kith relay serve --listen 127.0.0.1:0` (again, on a new port, after stop()).
  void start();
  // Stops the relay with `sig`; it must exit 0 after logging that it stopped, with no sanitizer
  // report. Returns its whole log.
  std::string stop(int sig = SIGTERM);
  std::string log();
  bool waitForLog(const std::string& needle, int timeoutMs = READY_TIMEOUT_MS);

  // `kith --home RELAYHOME ARGS...`, as KithHome's.
  RunResult kith(const std::vector<std::string>& args) const { return home_.kith(args); }
  RunResult kithOk(const std::vector<std::string>& args) const { return home_.kithOk(args); }
  nlohmann::json kithJson(const std::vector<std::string>& args) const { return home_.kithJson(args); }
  // `kith relay status --json`.
  nlohmann::json status() const { return kithJson({"relay", "status"}); }

private:
  KithHome home_;
  std::string key_;
  std::unique_ptr<Process> process_;
  uint16_t port_ = 0;
};

}  // namespace kith::test
