#include "tests/support/kith-process.h"

#include <regex>
#include <sstream>

namespace kith::test {

using nlohmann::json;

const char* kithBinary() { return KITH_BIN; }

RunOptions kithOptions(int timeoutMs) {
  RunOptions options;
  options.unsetEnv = {"KITH_HOME", "KITH_PASSPHRASE"};
  options.timeoutMs = timeoutMs;
  return options;
}

RunResult runKith(const std::string& home, const std::vector<std::string>& args, const RunOptions& options) {
  std::vector<std::string> argv{kithBinary(), "--home", home};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, options);
}

std::string describe(const RunResult& r) {
  std::string command = "kith";
  for (size_t i = 1; i < r.argv.size(); ++i) command += " " + r.argv[i];
  return command + ": exit " + std::to_string(r.exitCode) + ", signal " + std::to_string(r.signal) +
         (r.timedOut ? ", TIMED OUT" : "") + "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool startsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool hasSanitizerReport(const std::string& text) {
  return contains(text, "AddressSanitizer") || contains(text, "LeakSanitizer") || contains(text, "runtime error");
}

void requireNoCrash(const RunResult& r) {
  INFO(describe(r));
  REQUIRE_FALSE(r.timedOut);
  REQUIRE(r.signal == 0);
  REQUIRE_FALSE(hasSanitizerReport(r.err));
  REQUIRE_FALSE(hasSanitizerReport(r.out));
  REQUIRE_FALSE(contains(r.err, "internal error"));
}

std::string requireError(const RunResult& r, int exitCode, const std::string& progressPrefix) {
  requireNoCrash(r);
  INFO(describe(r));
  REQUIRE(r.exitCode == exitCode);
  REQUIRE(r.out.empty());
  REQUIRE_FALSE(r.err.empty());
  REQUIRE(r.err.back() == '\n');
  size_t lastStart = r.err.rfind('\n', r.err.size() - 2);
  lastStart = lastStart == std::string::npos ? 0 : lastStart + 1;
  std::string line = r.err.substr(lastStart, r.err.size() - 1 - lastStart);
  REQUIRE(startsWith(line, "kith: error: "));
  REQUIRE(line.size() > std::string("kith: error: ").size());
  for (size_t at = 0; at < lastStart; at = r.err.find('\n', at) + 1) {
    REQUIRE_FALSE(progressPrefix.empty());
    REQUIRE(r.err.compare(at, progressPrefix.size(), progressPrefix) == 0);
  }
  return line;
}

std::string requireRefusal(const RunResult& r, const std::vector<std::string>& words) {
  std::string line = requireError(r);
  INFO(line);
  bool mentioned = false;
  for (const auto& w : words) mentioned = mentioned || contains(line, w);
  REQUIRE(mentioned);
  return line;
}

void requireComposed(const RunResult& r) {
  requireNoCrash(r);
  INFO(describe(r));
  REQUIRE((r.exitCode == 0 || r.exitCode == 1));
  size_t errors = 0;
  for (const auto& line : lines(r.err)) {
    bool isError = startsWith(line, "kith: error: ");
    REQUIRE((isError || startsWith(line, "kith: warning: ")));
    errors += isError ? 1 : 0;
  }
  REQUIRE(errors == (r.exitCode == 0 ? 0u : 1u));
}

std::optional<json> entryWithText(const json& entries, const std::string& text) {
  for (const auto& e : entries) {
    if (e.at("text").is_string() && e.at("text").get<std::string>() == text) return e;
  }
  return std::nullopt;
}

bool hasText(const json& entries, const std::string& text) { return entryWithText(entries, text).has_value(); }

std::vector<std::string> idsOf(const json& entries) {
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.at("id").get<std::string>());
  return ids;
}

bool showsReactions(const json& entries, const std::string& updateText, const std::string& commentText,
                    const std::string& commenter, const std::string& hearter) {
  auto update = entryWithText(entries, updateText);
  if (!update || !update->contains("comments") || !update->contains("hearts")) return false;
  bool commented = false;
  for (const auto& c : update->at("comments")) {
    commented = commented || (c.at("text") == commentText && c.at("author") == commenter);
  }
  bool hearted = false;
  for (const auto& h : update->at("hearted_by")) hearted = hearted || h == hearter;
  return commented && update->at("hearts") == 1 && hearted;
}

KithHome::KithHome(std::string name, bool init, std::optional<std::string> passphrase)
    : name_(std::move(name)), passphrase_(std::move(passphrase)) {
  if (!init) return;
  std::vector<std::string> args{"init"};
  if (!passphrase_) args.push_back("--no-passphrase");
  if (!name_.empty()) args.insert(args.end(), {"--name", name_});
  kithOk(args);
  id_ = kithJson({"id"}).at("id").get<std::string>();
}

RunResult KithHome::runUnchecked(const std::vector<std::string>& args) const {
  RunOptions options = kithOptions();
  if (passphrase_) options.env["KITH_PASSPHRASE"] = *passphrase_;
  return runKith(path(), args, options);
}

RunResult KithHome::kith(const std::vector<std::string>& args) const {
  RunResult r = runUnchecked(args);
  INFO(name_);
  requireNoCrash(r);
  return r;
}

RunResult KithHome::kithOk(const std::vector<std::string>& args) const {
  RunResult r = kith(args);
  INFO(name_ << ": " << describe(r));
  REQUIRE(r.exitCode == 0);
  return r;
}

std::unique_ptr<Process> KithHome::start(const std::vector<std::string>& args) const {
  RunOptions options = kithOptions();
  if (passphrase_) options.env["KITH_PASSPHRASE"] = *passphrase_;
  options.dieWithParent = true;
  std::vector<std::string> argv{kithBinary(), "--home", path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Process>(argv, options);
}

json KithHome::kithJson(const std::vector<std::string>& args) const {
  std::vector<std::string> withJson{"--json"};
  withJson.insert(withJson.end(), args.begin(), args.end());
  RunResult r = kithOk(withJson);
  INFO(r.out);
  return json::parse(r.out);
}

namespace {

// Stops a long-running `kith serve` or `kith relay serve` with `sig` and checks that it ended as
// it should: exit 0 after its "stopping" and "stopped" lines, no sanitizer report.
std::string stopServing(Process& process, int sig) {
  int code = process.stop(sig);
  std::string out = process.output();
  INFO("signal " << sig << "\n--- log ---\n" << out);
  REQUIRE(code == 0);
  REQUIRE(contains(out, "stopping (signal " + std::to_string(sig) + ")"));
  REQUIRE(contains(out, " stopped\n"));
  REQUIRE_FALSE(hasSanitizerReport(out));
  return out;
}

// The port in the "listening on 127.0.0.1:PORT" line of a serve's log (the needle may arrive
// before the rest of its line, hence the wait for the character after the port).
uint16_t listeningPort(Process& process, const std::string& who) {
  bool listening = process.waitForOutput("listening on 127.0.0.1:", READY_TIMEOUT_MS);
  INFO(who << ":\n" << process.output());
  REQUIRE(listening);
  static const std::regex LISTENING("listening on 127\\.0\\.0\\.1:([0-9]+)[^0-9]");
  std::smatch match;
  std::string log;
  REQUIRE(eventually(READY_TIMEOUT_MS, [&] {
    log = process.output();
    return std::regex_search(log, match, LISTENING);
  }));
  int port = std::stoi(match[1].str());
  REQUIRE(port > 0);
  REQUIRE(port <= UINT16_MAX);
  return static_cast<uint16_t>(port);
}

}  // namespace

KithServe::KithServe(const KithHome& home)
    : process_({kithBinary(), "--home", home.path(), "serve", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"},
               kithOptions()) {
  port_ = listeningPort(process_, home.name() + "'s node");
}

std::string KithServe::stop(int sig) { return stopServing(process_, sig); }

RunResult finished(Process& process, const std::vector<std::string>& argv, int timeoutMs) {
  RunResult r;
  r.argv = argv;
  bool ended = eventually(timeoutMs, [&] {
    process.output();  // drained as it comes, so that the child never waits on a full pipe
    return process.tryWait().has_value();
  });
  if (!ended) {
    process.stop(SIGKILL);
    r.timedOut = true;
  }
  r.err = process.output();
  r.signal = process.termSignal();
  r.exitCode = r.signal != 0 || r.timedOut ? -1 : *process.tryWait();
  return r;
}

KithRelay::KithRelay(std::string name, const std::vector<std::string>& initArgs, bool serve)
    : home_(std::move(name), false) {
  std::vector<std::string> args{"relay", "init"};
  args.insert(args.end(), initArgs.begin(), initArgs.end());
  json init = home_.kithJson(args);
  key_ = init.at("key").get<std::string>();
  REQUIRE(key_.size() == 64);
  if (serve) start();
}

KithRelay::~KithRelay() = default;

void KithRelay::start() {
  REQUIRE(process_ == nullptr);
  RunOptions options = kithOptions();
  options.outputPath = home_.dir() + "/relay.log";
  options.dieWithParent = true;
  process_ = std::make_unique<Process>(
      std::vector<std::string>{kithBinary(), "--home", path(), "relay", "serve", "--listen", "127.0.0.1:0"}, options);
  port_ = listeningPort(*process_, name() + "'s relay");
}

std::string KithRelay::stop(int sig) {
  REQUIRE(process_ != nullptr);
  std::string out = stopServing(*process_, sig);
  process_.reset();
  return out;
}

std::string KithRelay::log() { return process_ ? process_->output() : readFile(home_.dir() + "/relay.log"); }

bool KithRelay::waitForLog(const std::string& needle, int timeoutMs) {
  return process_ != nullptr && process_->waitForOutput(needle, timeoutMs);
}

}  // namespace kith::test
