// `kith relay init|serve|token|status`: running a relay for others (docs/relay.md, "For
// operators"). A relay's home holds relay.json (the operator's settings), relay.key (the relay's
// key, not sealed: a relay starts unattended) and store/ (store/relay-store.h); see cli/home.h.
// A running `relay serve` holds HOME/relay-serve.lock and keeps HOME/relay-status.json (its
// connections and refusals) at most once a second, after a change.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/limits.h"
#include "cli/runtime.h"
#include "crypto/fingerprint.h"
#include "crypto/key-file.h"
#include "node/relay-server.h"

namespace kith::cli {
namespace {

using nlohmann::json;

constexpr const char* RELAY_KEY_NAME = "kith relay";
constexpr size_t RELAY_STATUS_BYTES_MAX = 64 * 1024;
constexpr size_t RELAY_LOCK_BYTES_MAX = 256;
constexpr uint32_t RELAY_TOKEN_MAILBOXES_MAX = 100000;

std::string statusPath(const Home& home) { return home.path() + "/relay-status.json"; }
std::string lockPath(const Home& home) { return home.path() + "/relay-serve.lock"; }

// The operator's settings (relay.json).
struct RelaySettings {
  std::string listen = node::RELAY_DEFAULT_LISTEN;
  store::RelayPolicy policy = node::defaultRelayPolicy();
  size_t connectionsPerAddress = node::RELAY_DEFAULT_CONNECTIONS_PER_ADDRESS;

  json toJson() const {
    return {{"listen", listen},
            {"admission", store::admissionName(policy.admission)},
            {"mailbox_quota_bytes", policy.mailboxQuotaBytes},
            {"mailbox_quota_envelopes", policy.mailboxQuotaEnvelopes},
            {"disk_cap_bytes", policy.diskCapBytes},
            {"mailboxes_max", policy.mailboxesMax},
            {"connections_per_address", connectionsPerAddress},
            {"retention_days", policy.retentionDays}};
  }
};

store::RelayAdmission parseAdmission(const std::string& text) {
  if (text == "open") return store::RelayAdmission::OPEN;
  if (text == "token") return store::RelayAdmission::TOKEN;
  throw Error(ErrorKind::USAGE, "'" + text + "' is not an admission", "use 'open' or 'token'");
}

// The home the relay commands were given, checked to be a relay's.
void requireRelayHome(const Home& home) {
  if (home.isRelayHome()) return;
  if (home.hasIdentity()) {
    throw Error(ErrorKind::USAGE, home.path() + " is a household's home, not a relay's",
                "make a relay home in another folder with 'kith --home DIR relay init'");
  }
  throw Error(ErrorKind::NOT_FOUND, "there is no relay home at " + home.path(),
              "make one with 'kith --home DIR relay init'");
}

RelaySettings loadSettings(const Home& home) {
  const std::string path = home.relayConfigPath();
  const std::string hint = "fix the setting in " + path + " (docs/relay.md lists them)";
  auto file = readSmallFile("the relay's settings", path, CONFIG_BYTES_MAX, hint);
  if (!file) throw Error(ErrorKind::NOT_FOUND, "there is no relay home at " + home.path(), "run 'kith relay init'");
  json j = json::parse(file->begin(), file->end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorKind::CORRUPT, path + " is not a JSON object", hint);
  RelaySettings s;
  auto number = [&](const char* name, uint64_t current, uint64_t max) -> uint64_t {
    if (!j.contains(name)) return current;
    const json& v = j[name];
    if (!v.is_number_unsigned() || v.get<uint64_t>() == 0 || v.get<uint64_t>() > max) {
      throw Error(ErrorKind::CORRUPT, path + ": '" + name + "' must be a whole number from 1 to " + std::to_string(max),
                  hint);
    }
    return v.get<uint64_t>();
  };
  for (const auto& [key, value] : j.items()) {
    if (!s.toJson().contains(key)) throw Error(ErrorKind::CORRUPT, path + ": unknown setting '" + key + "'", hint);
  }
  if (j.contains("listen")) {
    if (!j["listen"].is_string()) throw Error(ErrorKind::CORRUPT, path + ": 'listen' must be \"HOST:PORT\"", hint);
    s.listen = j["listen"].get<std::string>();
    parseAddress(s.listen, true);
  }
  if (j.contains("admission")) {
    if (!j["admission"].is_string()) throw Error(ErrorKind::CORRUPT, path + ": 'admission' must be a string", hint);
    std::string a = j["admission"].get<std::string>();
    if (a != "open" && a != "token") {
      throw Error(ErrorKind::CORRUPT, path + ": 'admission' must be \"open\" or \"token\"", hint);
    }
    s.policy.admission = parseAdmission(a);
  }
  s.policy.mailboxQuotaBytes = number("mailbox_quota_bytes", s.policy.mailboxQuotaBytes, store::MAP_BYTES_MAX);
  s.policy.mailboxQuotaEnvelopes = number("mailbox_quota_envelopes", s.policy.mailboxQuotaEnvelopes, UINT32_MAX);
  s.policy.diskCapBytes = number("disk_cap_bytes", s.policy.diskCapBytes, store::MAP_BYTES_MAX / 2);
  s.policy.mailboxesMax = number("mailboxes_max", s.policy.mailboxesMax, UINT32_MAX);
  s.connectionsPerAddress = number("connections_per_address", s.connectionsPerAddress, node::RELAY_CONNECTIONS_MAX);
  s.policy.retentionDays = static_cast<uint32_t>(number("retention_days", s.policy.retentionDays, 3650));
  return s;
}

crypto::Identity readRelayKey(const Home& home) {
  const std::string hint = "restore the relay's key file from a backup, or make a new relay home";
  auto file = readSmallFile("the relay's key file", home.relayKeyFilePath(), crypto::KEY_FILE_BYTES_MAX, hint);
  if (!file) throw Error(ErrorKind::NOT_FOUND, "the relay home " + home.path() + " has no key file", hint);
  return crypto::openKeyFile(*file, std::nullopt).identity;
}

std::unique_ptr<store::RelayStore> openRelayStore(const Home& home, const store::RelayPolicy& policy,
                                                  bool create = false) {
  store::RelayStoreOptions options;
  options.create = create;
  return std::make_unique<store::RelayStore>(home.storeDir(), policy, options);
}

// Held (flock) by a running `kith relay serve`, with its listen address inside.
class RelayServeLock {
public:
  explicit RelayServeLock(const Home& home) {
    fd_ = ::open(lockPath(home).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw Error(ErrorKind::IO, "cannot open " + lockPath(home), "check the home folder's permissions");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      fd_ = -1;
      throw Error(ErrorKind::CONFLICT, "another 'kith relay serve' already runs on this home",
                  "stop it first, or use another --home");
    }
  }
  ~RelayServeLock() {
    if (fd_ >= 0) {
      (void)!::ftruncate(fd_, 0);
      ::close(fd_);
    }
  }
  RelayServeLock(const RelayServeLock&) = delete;
  RelayServeLock& operator=(const RelayServeLock&) = delete;
  void setAddress(const std::string& address) {
    if (::ftruncate(fd_, 0) == 0) {
      (void)!::pwrite(fd_, address.data(), std::min(address.size(), RELAY_LOCK_BYTES_MAX), 0);
    }
  }

private:
  int fd_ = -1;
};

// The address a running `relay serve` of this home listens on; nullopt when none runs.
std::optional<std::string> relayServingAddress(const Home& home) {
  int fd = ::open(lockPath(home).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> out;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    char buf[RELAY_LOCK_BYTES_MAX];
    ssize_t n = ::read(fd, buf, sizeof buf);
    out = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("(address unknown)");
  }
  ::close(fd);
  return out;
}

json refusalsJson(const node::RelayServerStats& s) {
  json out = json::object();
  for (size_t i = 0; i < s.refusals.size(); ++i) {
    out[store::refusalName(static_cast<store::RelayRefusalKind>(i))] = s.refusals[i];
  }
  for (size_t i = 0; i < s.callRefusals.size(); ++i) {
    out[node::callRefusalName(static_cast<node::RelayCallRefusal>(i))] = s.callRefusals[i];
  }
  return out;
}

// Writes HOME/relay-status.json after a change, at most once per RELAY_STATUS_WRITE_INTERVAL_MS: an
// idle relay writes nothing and runs no timer for it.
class StatusWriter final : private kj::TaskSet::ErrorHandler {
public:
  StatusWriter(const Home& home, node::RelayServer& server, kj::Timer& timer, spdlog::logger& log)
      : home_(home), server_(server), timer_(timer), log_(log), last_(timer.now()), tasks_(*this) {}

  void changed() {
    if (pending_) return;
    pending_ = true;
    kj::TimePoint due = last_ + node::RELAY_STATUS_WRITE_INTERVAL_MS * kj::MILLISECONDS;
    kj::Duration delay = due > timer_.now() ? due - timer_.now() : 0 * kj::MILLISECONDS;
    tasks_.add(timer_.afterDelay(delay).then([this]() {
      pending_ = false;
      last_ = timer_.now();
      write();
    }));
  }

  void write() {
    node::RelayServerStats s = server_.stats();
    json j = {{"connections", s.connections},
              {"handshakes", s.handshakes},
              {"connections_accepted", s.connectionsAccepted},
              {"envelopes_stored", s.envelopesStored},
              {"envelopes_served", s.envelopesServed},
              {"refusals", refusalsJson(s)},
              {"updated", isoTime(nowMs())}};
    std::string text = j.dump(2) + "\n";
    try {
      writeFileAtomic(statusPath(home_), asBytes(text), 0600);
    } catch (const Error& e) { log_.warn("relay: cannot write the status file: {}", e.what()); }
  }

private:
  void taskFailed(kj::Exception&& e) override {
    log_.warn("relay: writing the status file failed: {}", e.getDescription().cStr());
  }

  const Home& home_;
  node::RelayServer& server_;
  kj::Timer& timer_;
  spdlog::logger& log_;
  kj::TimePoint last_;
  bool pending_ = false;
  kj::TaskSet tasks_;
};

struct InitArgs {
  std::optional<std::string> listen;
  std::optional<std::string> admission;
};

void cmdRelayInit(Context& ctx, const InitArgs& a) {
  const Home& home = ctx.home();
  if (home.isRelayHome()) {
    throw Error(ErrorKind::CONFLICT, home.path() + " is a relay's home already",
                "run 'kith relay serve' with it, or choose another folder with --home DIR");
  }
  RelaySettings settings;
  if (a.listen) {
    parseAddress(*a.listen, true);
    settings.listen = *a.listen;
  }
  if (a.admission) settings.policy.admission = parseAdmission(*a.admission);
  crypto::Identity identity = crypto::Identity::generate();
  buildHomeAtomically(home.path(), [&](const Home& staging) {
    Bytes key = crypto::writeKeyFile(identity, RELAY_KEY_NAME, std::nullopt);
    writeFileAtomic(staging.relayKeyFilePath(), key, 0600);
    std::string text = settings.toJson().dump(2) + "\n";
    writeFileAtomic(staging.relayConfigPath(), asBytes(text), 0600);
    openRelayStore(staging, settings.policy, true);
  });
  std::string key = toHex(identity.publicKey());
  std::string fp = crypto::fingerprint(identity.publicKey());
  std::ostringstream text;
  text << "Made a relay home in " << home.path() << "\n"
       << "address:     " << settings.listen << "\n"
       << "key:         " << key << "\n"
       << "fingerprint: " << fp << "\n"
       << "admission:   " << store::admissionName(settings.policy.admission) << "\n"
       << "Note: the relay's key file is NOT encrypted (a relay starts unattended); it is readable only by you "
          "(mode 0600).\n";
  if (settings.listen.rfind("127.", 0) == 0 || settings.listen.rfind("localhost", 0) == 0) {
    text << "It listens on this machine only: for others, set \"listen\" in relay.json (e.g. 0.0.0.0:7500).\n";
  }
  text << "Next: kith --home " << home.path() << " relay serve";
  if (settings.policy.admission == store::RelayAdmission::TOKEN) {
    text << "; give each family a token from 'kith --home " << home.path() << " relay token'";
  }
  text << "; families add it with 'kith relay add HOST:PORT " << key << "'";
  ctx.print({{"home", home.path()},
             {"listen", settings.listen},
             {"key", key},
             {"fingerprint", fp},
             {"admission", store::admissionName(settings.policy.admission)}},
            text.str());
}

void cmdRelayServe(Context& ctx, const std::optional<std::string>& listenArg) {
  const Home& home = ctx.home();
  requireRelayHome(home);
  RelayServeLock lock(home);
  RelaySettings settings = loadSettings(home);
  auto listen = parseAddress(listenArg ? *listenArg : settings.listen, true);
  crypto::Identity identity = readRelayKey(home);
  auto logger = makeLogger(ctx.options().verbose);
  auto relayStore = openRelayStore(home, settings.policy);
  node::RelayServerSettings serverSettings;
  serverSettings.host = listen.first;
  serverSettings.port = listen.second;
  serverSettings.connectionsPerAddress = settings.connectionsPerAddress;
  node::UvIoContext io;
  int signum = 0;
  {
    node::RelayServer server(io.getPort(), *relayStore, identity, serverSettings, *logger);
    StatusWriter status(home, server, io.getTimer(), *logger);
    server.onChange([&status]() { status.changed(); });
    try {
      server.start();
    } catch (const kj::Exception& e) {
      throw Error(ErrorKind::IO, e.getDescription().cStr(),
                  "choose another address with --listen HOST:PORT, or stop what uses it");
    }
    std::string address = node::formatHostPort(listen.first, server.listenPort());
    lock.setAddress(address);
    status.write();
    logger->info("kith relay {} (fingerprint {}) listening on {}, admission {}",
                 toHex(identity.publicKey()).substr(0, 16), crypto::fingerprint(identity.publicKey()), address,
                 store::admissionName(settings.policy.admission));
    signum = io.getPort().runUntil(node::onShutdownSignal(io.getPort()), io.getWaitScope());
    logger->info("stopping (signal {})", signum);
    server.onChange(nullptr);
  }
  std::error_code ec;
  std::filesystem::remove(statusPath(home), ec);
  io.shutdown();
  logger->info("stopped");
}

void cmdRelayToken(Context& ctx, uint32_t mailboxes) {
  const Home& home = ctx.home();
  requireRelayHome(home);
  if (mailboxes == 0 || mailboxes > RELAY_TOKEN_MAILBOXES_MAX) {
    throw Error(ErrorKind::USAGE, "--mailboxes must be from 1 to " + std::to_string(RELAY_TOKEN_MAILBOXES_MAX));
  }
  RelaySettings settings = loadSettings(home);
  auto relayStore = openRelayStore(home, settings.policy);
  Bytes token(store::RELAY_TOKEN_BYTES);
  crypto::randomBytes(token);
  relayStore->addToken(token, mailboxes);
  std::string hex = toHex(token);
  std::ostringstream text;
  text << hex << "\n"
       << "This access token lets a family make " << countOf(mailboxes, "mailbox", "mailboxes")
       << " on this relay ('kith relay add HOST:PORT KEY --token TOKEN'). Only its hash is kept: "
          "it cannot be shown again.";
  if (settings.policy.admission == store::RelayAdmission::OPEN) {
    text << "\nNote: this relay is open (\"admission\": \"open\" in relay.json): nobody needs a token yet.";
  }
  ctx.print({{"token", hex}, {"mailboxes", mailboxes}}, text.str());
}

void cmdRelayStatus(Context& ctx) {
  const Home& home = ctx.home();
  requireRelayHome(home);
  RelaySettings settings = loadSettings(home);
  crypto::Identity identity = readRelayKey(home);
  auto relayStore = openRelayStore(home, settings.policy);
  store::RelayTotals t = relayStore->totals();
  std::optional<std::string> serving = relayServingAddress(home);
  json j = {{"home", home.path()},
            {"key", toHex(identity.publicKey())},
            {"fingerprint", crypto::fingerprint(identity.publicKey())},
            {"admission", store::admissionName(settings.policy.admission)},
            {"relay", serving ? "serving" : "stopped"},
            {"mailboxes_open", t.mailboxesOpen},
            {"mailboxes_closed", t.mailboxesClosed},
            {"envelopes", t.envelopes},
            {"bytes", t.bytes},
            {"tokens", t.tokens},
            {"settings", settings.toJson()}};
  std::ostringstream text;
  text << "home:        " << home.path() << "\n"
       << "key:         " << toHex(identity.publicKey()) << "\n"
       << "admission:   " << store::admissionName(settings.policy.admission) << "\n"
       << "relay:       " << (serving ? "serving on " + *serving : std::string("stopped")) << "\n"
       << "mailboxes:   " << t.mailboxesOpen << " open, " << t.mailboxesClosed << " closed (at most "
       << settings.policy.mailboxesMax << " open)\n"
       << "envelopes:   " << t.envelopes << ", " << t.bytes << " bytes (disk cap " << settings.policy.diskCapBytes
       << ")\n";
  if (serving) {
    auto file = readSmallFile("the relay's status file", statusPath(home), RELAY_STATUS_BYTES_MAX,
                              "it is rewritten by 'kith relay serve'");
    json live = file ? json::parse(file->begin(), file->end(), nullptr, false) : json();
    if (live.is_object()) {
      j["connections"] = live.value("connections", 0);
      j["refusals"] = live.value("refusals", json::object());
      j["envelopes_stored"] = live.value("envelopes_stored", 0);
      j["envelopes_served"] = live.value("envelopes_served", 0);
      text << "connections: " << j["connections"].get<uint64_t>() << "\n";
      std::string refusals;
      uint64_t total = 0;
      for (const auto& [name, count] : j["refusals"].items()) {
        if (!count.is_number_unsigned() || count.get<uint64_t>() == 0) continue;
        total += count.get<uint64_t>();
        refusals += (refusals.empty() ? "" : ", ") + name + " " + std::to_string(count.get<uint64_t>());
      }
      text << "refusals:    " << total << (refusals.empty() ? "" : " (" + refusals + ")") << " since it started\n";
    }
  }
  ctx.print(j, text.str());
}

}  // namespace

void addRelayOperatorCommands(Commands& relay) {
  relay.add<InitArgs>(
      "init", "Make a relay's home: its key (not sealed), its settings (relay.json) and its store",
      [](CLI::App& cmd, InitArgs& a) {
        cmd.add_option("--listen", a.listen,
                       std::string("HOST:PORT to listen on (default ") + node::RELAY_DEFAULT_LISTEN + ")");
        cmd.add_option("--admission", a.admission, "open (anyone, within the quotas) or token (default open)");
      },
      cmdRelayInit);
  relay.add<std::optional<std::string>>(
      "serve", "Run the relay until SIGINT or SIGTERM",
      [](CLI::App& cmd, std::optional<std::string>& listen) {
        cmd.add_option("--listen", listen, "HOST:PORT to listen on (default from relay.json)");
      },
      cmdRelayServe);
  relay.add<uint32_t>(
      "token", "Print a new access token for a family (token admission)",
      [](CLI::App& cmd, uint32_t& mailboxes) {
        mailboxes = node::RELAY_DEFAULT_TOKEN_MAILBOXES;
        cmd.add_option("--mailboxes", mailboxes, "Mailboxes the token allows (default 1)");
      },
      cmdRelayToken);
  relay.add("status", "The relay's mailboxes, envelopes, bytes, connections and refusals", cmdRelayStatus);
}

}  // namespace kith::cli
