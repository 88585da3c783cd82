// A relay (`kith relay serve`) under load, and households replicating through it, printed beside
// references measured in the same run: the relay's memory holding many mailboxes and connections,
// the envelopes/s from a writer through the relay to a reader beside direct replication, and the
// relay's idle wake-ups beside an idle `sleep` process.
//
//   relay-bench [N] [SECONDS] [--kith PATH]
//     N        entries the writer's journal gains (default 20000, 256-byte texts)
//     SECONDS  the idle observation window (default 30)
//     --kith   the `kith` binary (default $KITH_BIN, else ../cli/kith beside this binary)
//   KITH_BENCH_KEEP=1 keeps the temporary homes and the children's logs.
//
// Phases:
// - prepare: the relay's home (`kith relay init`, then relay.json raised for the bench: connections
//   per address, a mailbox's quota for the N envelopes); the writer's home written with the library
//   (a journal, readers R1 and R2 granted). The relay serves; its RSS idle and empty is read.
//   `kith relay add` by the writer; the writer serves and each reader `kith follow`s the journal
//   (its first few entries, the relays entry included); then N entries are appended to the
//   writer's journal with the library.
// - load: the bench itself opens CONNECTIONS connections to the relay (node::connectRelay, a fresh
//   transport key each), makes MAILBOXES mailboxes over them (create, open, put of a few envelopes
//   sealed with random epoch keys), and leaves one waiting get (wait=true) on each connection. The
//   relay's VmRSS and VmHWM are read (/proc/PID/status).
// - idle: with those connections idle, the relay's wake-ups over SECONDS (voluntary + involuntary
//   context switches summed over its threads, as idle-bench does), beside an idle `sleep`. The
//   memory is read again at the end. Then the bench closes its connections.
// - direct: the relay is stopped (so that R1 cannot touch it), the writer serves, and R1's
//   `kith sync` is timed from its start until R1's store holds every entry of the writer.
// - relay: the relay serves again (same home and port) and the writer stops serving. The writer's
//   `kith sync` is timed until it exits (it pushes the N entries as envelopes); then R2 (its peers
//   cleared, so that only the relay can serve it) `kith sync` is timed until its store holds every
//   entry. envelopes/s = N / (push + pull).
// - live: R2 serves (its link waits on the mailbox), the writer gains N more entries and its
//   `kith sync` pushes them; timed until R2 holds them all (pushing and pulling overlap).
// Both readers must end with every entry of the writer. Every child is killed when the bench exits,
// fails, or is interrupted. The last line is machine-readable:
//   relay_rss_mb=X relay_hwm_mb=X relay_envelopes_per_s=N direct_entries_per_s=N ratio=X.XX
//   live_ratio=X.XX relay_wakeups_per_s=X.XX verify_per_s=N
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <kj/async.h>
#include <kj/exception.h>

#include "bench/bench-support.h"
#include "cli/config.h"
#include "cli/home.h"
#include "crypto/key-file.h"
#include "crypto/sodium.h"
#include "node/limits.h"
#include "node/relay-client.h"
#include "node/relay-limits.h"
#include "node/uv/uv-event-port.h"
#include "protocol/relay.h"
#include "store/journal.h"

using namespace kith;
using namespace kith::bench;

namespace {

constexpr size_t ENTRIES_DEFAULT = 20000;
constexpr size_t TEXT_BYTES = 256;
constexpr unsigned WINDOW_DEFAULT_S = 30;
constexpr unsigned WINDOW_MIN_S = 1;
constexpr unsigned WINDOW_MAX_S = 3600;
constexpr size_t ENTRIES_MAX = 10000000;
// The load: mailboxes made over connections held open, each connection with one waiting get.
constexpr size_t MAILBOXES = 1000;
constexpr size_t CONNECTIONS = 200;
constexpr size_t MAILBOXES_PER_CONNECTION = MAILBOXES / CONNECTIONS;
static_assert(MAILBOXES % CONNECTIONS == 0, "every connection makes as many mailboxes");
static_assert(MAILBOXES_PER_CONNECTION <= node::RELAY_MAILBOXES_OPEN_PER_CONNECTION_MAX,
              "a connection may hold its mailboxes open");
// Envelopes put in each mailbox, each sealing this many random bytes (the smallest bucket).
constexpr size_t ENVELOPES_PER_MAILBOX = 3;
constexpr size_t ENVELOPE_CONTENT_BYTES = 300;
// Connections set up at once (the relay runs at most HANDSHAKES_IN_FLIGHT_MAX handshakes).
constexpr size_t CONNECT_BATCH = 32;
static_assert(CONNECT_BATCH <= node::HANDSHAKES_IN_FLIGHT_MAX, "no handshake may be dropped");
// relay.json for the bench: every connection comes from 127.0.0.1 (the bench's, the writer's, the
// readers'), and one mailbox takes the whole journal.
constexpr uint64_t CONNECTIONS_PER_ADDRESS = CONNECTIONS + 56;
constexpr uint64_t MAILBOX_ENVELOPES_SLACK = 1000;
// Bytes a mailbox's envelope may take at most for an entry of TEXT_BYTES (the 2,048 bucket).
constexpr uint64_t ENVELOPE_BYTES_BUDGET = 2048 + crypto::AEAD_OVERHEAD_BYTES;
// After the relay starts, and after the load is set up: time for its first work to end.
constexpr int SETTLE_MS = 2000;
// The reference `sleep` outlives the window by this much (it is killed at the end anyway).
constexpr unsigned REFERENCE_MARGIN_S = 60;
// A transfer that takes longer fails the bench.
constexpr int TRANSFER_TIMEOUT_MS = 1800000;
constexpr double RSS_GOAL_MB = 256;
constexpr double RATIO_GOAL = 0.7;

// Ed25519 verify of 256-byte messages on this one thread, for at least 0.5 s (as replication-bench).
double verifyRate() {
  crypto::Identity id = crypto::Identity::generate();
  Bytes msg(256, 0x5a);
  crypto::Signature sig = id.sign(msg);
  auto start = Clock::now();
  size_t n = 0;
  while (seconds(start) < 0.5) {
    for (int i = 0; i < 100; ++i) {
      if (!crypto::verify(id.publicKey(), msg, sig)) std::abort();
    }
    n += 100;
  }
  return static_cast<double>(n) / seconds(start);
}

uint64_t entryCount(const store::Store& s, const store::JournalId& journal) {
  auto info = s.journal(journal);
  return info ? info->entryCount : 0;
}

uint64_t entryCountAt(const std::string& home, const store::JournalId& journal) {
  auto s = cli::Home(home).openStore();
  return entryCount(*s, journal);
}

// `name` as found on $PATH (the harness runs a path, not a name).
std::string onPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (size_t from = 0; from <= dirs.size();) {
    size_t to = std::min(dirs.find(':', from), dirs.size());
    std::string candidate = dirs.substr(from, to - from) + "/" + name;
    if (to > from && access(candidate.c_str(), X_OK) == 0) return candidate;
    from = to + 1;
  }
  throw std::runtime_error("no '" + name + "' on PATH, for the reference process");
}

Bytes readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// ---------------------------------------------------------------------------------------------
// The relay: its home, its settings for the bench, and `kith relay serve`.

struct Relay {
  std::string home;
  uint16_t port = 0;
  crypto::PublicKey key{};
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

Relay initRelay(Workspace& ws, const std::string& home, size_t entries) {
  Relay r{home, freePort(), {}};
  ws.run(home, {"relay", "init", "--listen", r.address()});
  // The settings the bench needs beyond the defaults: every connection comes from one address,
  // and one mailbox holds the writer's whole journal (`entries`: what both transfers bring).
  std::string settingsPath = cli::Home(home).relayConfigPath();
  Bytes text = readFile(settingsPath);
  nlohmann::json settings = nlohmann::json::parse(text.begin(), text.end());
  settings["connections_per_address"] = CONNECTIONS_PER_ADDRESS;
  uint64_t envelopes = entries + MAILBOX_ENVELOPES_SLACK;
  settings["mailbox_quota_envelopes"] =
      std::max<uint64_t>(settings.value("mailbox_quota_envelopes", uint64_t{0}), envelopes);
  settings["mailbox_quota_bytes"] =
      std::max<uint64_t>(settings.value("mailbox_quota_bytes", uint64_t{0}), envelopes * ENVELOPE_BYTES_BUDGET);
  settings["disk_cap_bytes"] =
      std::max<uint64_t>(settings.value("disk_cap_bytes", uint64_t{0}), 2 * envelopes * ENVELOPE_BYTES_BUDGET);
  std::ofstream out(settingsPath, std::ios::trunc);
  out << settings.dump(2) << "\n";
  out.close();
  if (!out) throw std::runtime_error("cannot write " + settingsPath);
  r.key = crypto::openKeyFile(readFile(cli::Home(home).relayKeyFilePath()), std::nullopt).identity.publicKey();
  return r;
}

std::unique_ptr<Child> serveRelay(Workspace& ws, const Relay& r) {
  auto c = std::make_unique<Child>(
      std::vector<std::string>{ws.kith, "--home", r.home, "relay", "serve", "--listen", r.address()},
      ws.logPath("relay"));
  c->waitForLog("listening on " + r.address());
  return c;
}

// ---------------------------------------------------------------------------------------------
// The load: connections the bench holds to the relay, each with its mailboxes and a waiting get.

struct Held {
  kj::Own<node::RelayConnection> connection;
  std::vector<kj::Own<protocol::MailboxKeys>> keys;
  std::vector<relayrpc::Mailbox::Client> mailboxes;
  std::vector<uint64_t> cursors;
  kj::Promise<void> waiting = nullptr;
};

struct LoadCounters {
  size_t answered = 0;  // waiting gets that answered (none should, while the window lasts)
  size_t failed = 0;
  std::string lastFailure;
};

capnp::Data::Reader asData(ByteView bytes) { return capnp::Data::Reader(bytes.data(), bytes.size()); }

// A mailbox of a journal nobody knows: random epoch key and journal id.
protocol::MailboxKeys randomMailbox(const crypto::PublicKey& relayKey) {
  Bytes epochKey(32);
  crypto::randomBytes(epochKey);
  store::JournalId journal{};
  crypto::randomBytes(journal);
  return protocol::journalMailboxKeys(epochKey, journal, 0, relayKey);
}

kj::Promise<void> makeMailbox(Held& h, const crypto::PublicKey& relayKey) {
  h.keys.push_back(kj::heap<protocol::MailboxKeys>(randomMailbox(relayKey)));
  protocol::MailboxKeys& keys = *h.keys.back();
  auto admin = kj::heap<crypto::Identity>(crypto::Identity::generate());
  crypto::Identity& adminRef = *admin;
  return h.connection->create(keys, adminRef, {})
      .then([&h, &keys]() { return h.connection->open(keys); })
      .then([&h, &keys](relayrpc::Mailbox::Client mailbox) {
        auto request = mailbox.putRequest();
        auto list = request.initEnvelopes(ENVELOPES_PER_MAILBOX);
        for (unsigned i = 0; i < ENVELOPES_PER_MAILBOX; ++i) {
          Bytes content(ENVELOPE_CONTENT_BYTES);
          crypto::randomBytes(content);
          list.set(i, asData(protocol::sealEnvelope(keys.envelopeKey.view(), content)));
        }
        h.mailboxes.push_back(kj::mv(mailbox));
        return request.send().then([&h](capnp::Response<relayrpc::Mailbox::PutResults>&& response) {
          h.cursors.push_back(response.getCursor());
        });
      })
      .attach(kj::mv(admin));
}

// Connects, makes the connection's mailboxes one after the other, then leaves a waiting get on
// the first; resolves once the relay has taken that get (a plain get sent after it on the same
// connection was answered: the relay reads one connection's calls in order).
kj::Promise<void> setUpConnection(node::UvEventPort& port, Held& h, const Relay& relay, LoadCounters& counters) {
  return node::connectRelay(port, port.getTimer(), "127.0.0.1", relay.port, relay.key)
      .then([&h, &relay](kj::Own<node::RelayConnection> connection) {
        h.connection = kj::mv(connection);
        kj::Promise<void> chain = kj::READY_NOW;
        for (size_t i = 0; i < MAILBOXES_PER_CONNECTION; ++i) {
          chain = chain.then([&h, &relay]() { return makeMailbox(h, relay.key); });
        }
        return chain;
      })
      .then([&h, &counters]() {
        auto wait = h.mailboxes[0].getRequest();
        wait.setAfter(h.cursors[0]);
        wait.setWait(true);
        h.waiting = wait.send()
                        .then([&counters](capnp::Response<relayrpc::Mailbox::GetResults>&&) { ++counters.answered; },
                              [&counters](kj::Exception&& e) {
                                ++counters.failed;
                                counters.lastFailure = e.getDescription().cStr();
                              })
                        .eagerlyEvaluate(nullptr);
        auto probe = h.mailboxes[MAILBOXES_PER_CONNECTION > 1 ? 1 : 0].getRequest();
        probe.setAfter(0);
        probe.setWait(false);
        return probe.send().ignoreResult();
      });
}

// ---------------------------------------------------------------------------------------------
// Readings of the relay.

struct Sample {
  Clock::time_point at;
  uint64_t contextSwitches = 0;
  double cpuSeconds = 0;
};

Sample sample(int pid) { return {Clock::now(), contextSwitchesOf(pid), cpuSecondsOf(pid)}; }

struct Idle {
  double seconds = 0;
  double wakeupsPerS = 0;
  double cpuPercent = 0;
};

Idle idleOver(const Sample& start, const Sample& end) {
  Idle r;
  r.seconds = std::chrono::duration<double>(end.at - start.at).count();
  r.wakeupsPerS = static_cast<double>(end.contextSwitches - start.contextSwitches) / r.seconds;
  r.cpuPercent = 100 * (end.cpuSeconds - start.cpuSeconds) / r.seconds;
  return r;
}

void printMemory(const char* what, int pid) {
  Memory m = memoryOf(pid);
  fmt::print("{} RSS {:.1f} MB ({:.1f} MB its own, {:.1f} MB pages of mapped files), peak {:.1f} MB, {} threads\n",
             what, megabytes(m.rssBytes), megabytes(m.anonBytes), megabytes(m.fileBytes), megabytes(m.hwmBytes),
             threadCountOf(pid));
}

// Waits until the store at `home` holds `expected` entries of `journal` while `node` runs (a
// `kith sync`); the seconds from `start` until then. Then waits for the process to exit 0.
double timeUntilHeld(const std::string& home, const store::JournalId& journal, uint64_t expected, Child& node,
                     Clock::time_point start, const char* what) {
  auto s = cli::Home(home).openStore();
  std::optional<double> heldAt;
  for (;;) {
    if (!heldAt && entryCount(*s, journal) >= expected) heldAt = seconds(start);
    std::optional<int> code = node.poll();
    if (code) {
      if (*code != 0) throw std::runtime_error(fmt::format("{}: kith sync exited {}:\n{}", what, *code, node.log()));
      if (!heldAt && entryCount(*s, journal) >= expected) heldAt = seconds(start);
      if (!heldAt) {
        throw std::runtime_error(fmt::format("{}: kith sync ended with {} of {} entries held; its log:\n{}", what,
                                             entryCount(*s, journal), expected,
                                             lastLines(node.log(), LOG_LINES_QUOTED)));
      }
      return *heldAt;
    }
    if (seconds(start) * 1000 > TRANSFER_TIMEOUT_MS) {
      throw std::runtime_error(fmt::format("{}: {} of {} entries after {} s", what, entryCount(*s, journal), expected,
                                           TRANSFER_TIMEOUT_MS / 1000));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int runBench(int argc, char** argv) {
  std::string kithPath = defaultKith();
  std::vector<unsigned long> numbers;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--kith" && i + 1 < argc) {
      kithPath = argv[++i];
    } else if (!arg.empty() && arg.size() <= 9 && arg.find_first_not_of("0123456789") == std::string::npos) {
      numbers.push_back(std::strtoul(arg.c_str(), nullptr, 10));
    } else {
      fmt::print(stderr, "usage: relay-bench [N] [SECONDS] [--kith PATH]\n");
      return 2;
    }
  }
  size_t n = numbers.size() > 0 ? numbers[0] : ENTRIES_DEFAULT;
  unsigned long windowS = numbers.size() > 1 ? numbers[1] : WINDOW_DEFAULT_S;
  if (numbers.size() > 2 || n < 1 || n > ENTRIES_MAX || windowS < WINDOW_MIN_S || windowS > WINDOW_MAX_S) {
    fmt::print(stderr, "usage: relay-bench [N] [SECONDS] [--kith PATH]: N from 1 to {}, SECONDS from {} to {}\n",
               ENTRIES_MAX, WINDOW_MIN_S, WINDOW_MAX_S);
    return 2;
  }
  if (access(kithPath.c_str(), X_OK) != 0) {
    fmt::print(stderr, "cannot run {}: give the kith binary with --kith PATH or KITH_BIN\n", kithPath);
    return 2;
  }
  unsetenv("KITH_HOME");
  unsetenv("KITH_PASSPHRASE");

  double verifyBefore = verifyRate();
  Cores machine = cores();
  fmt::print("reference: ed25519 verify {:.0f}/s on one thread; {} cores ({} usable by this process)\n", verifyBefore,
             machine.hardware, machine.usable);

  TempWorkspace workspace("kith-relay-bench");
  Workspace ws{workspace.path(), kithPath};

  // --- prepare: the relay; the writer's journal with R1 and R2 granted.
  auto start = Clock::now();
  Relay relay = initRelay(ws, ws.root + "/relay", 2 * n);
  NodeHome writer = makeHome(ws.root + "/writer", "W");
  NodeHome r1 = makeHome(ws.root + "/r1-direct", "R1");
  NodeHome r2 = makeHome(ws.root + "/r2-relay", "R2");
  store::JournalId journal{};
  {
    auto s = cli::Home(writer.path).openStore();
    store::Keyring keyring = writer.keyring();
    journal = store::createJournal(*s, keyring, "relay bench");
    for (const NodeHome* r : {&r1, &r2}) {
      store::addMember(*s, keyring, journal, r->identity.publicKey(), protocol::Role::SUBSCRIBER);
    }
  }
  std::string journalHex = toHex(journal);

  auto relayNode = serveRelay(ws, relay);
  std::this_thread::sleep_for(std::chrono::milliseconds(SETTLE_MS));
  Memory emptyMemory = memoryOf(relayNode->pid());
  printMemory("relay idle and empty:                          ", relayNode->pid());

  ws.run(writer.path, {"relay", "add", relay.address(), toHex(relay.key)});
  {
    uint16_t writerPort = freePort();
    std::string writerAddress = "127.0.0.1:" + std::to_string(writerPort);
    auto writerNode = ws.serve("writer", writer.path, writerPort);
    for (const NodeHome* r : {&r1, &r2}) {
      ws.run(r->path, {"follow", journalHex, "--peer", writerAddress, "--key", writer.id()});
    }
    if (writerNode->stop(SIGTERM) != 0) throw std::runtime_error("the writer's node did not stop cleanly");
  }
  uint64_t prefix = entryCountAt(r2.path, journal);
  uint64_t payloadBytes = 0;
  uint64_t expected = 0;
  {
    auto s = cli::Home(writer.path).openStore();
    payloadBytes = appendUpdates(*s, writer, journal, n, TEXT_BYTES);
    expected = entryCount(*s, journal);
  }
  if (prefix + n != expected || entryCountAt(r1.path, journal) != prefix) {
    throw std::runtime_error(fmt::format("the readers hold {} and {} entries before the transfers, the writer {}",
                                         entryCountAt(r1.path, journal), prefix, expected));
  }
  fmt::print("prepared {} entries ({:.1f} MB signed and encrypted; the readers hold the first {}) in {:.1f} s\n", n,
             static_cast<double>(payloadBytes) / 1e6, prefix, seconds(start));

  // --- load and idle: the bench's own connections to the relay.
  Memory loadedMemory;
  Idle relayIdle, refIdle;
  {
    node::UvIoContext io;
    auto& port = io.getPort();
    auto& waitScope = io.getWaitScope();
    LoadCounters counters;
    std::vector<Held> held(CONNECTIONS);
    auto loadStart = Clock::now();
    for (size_t from = 0; from < held.size(); from += CONNECT_BATCH) {
      auto promises = kj::heapArrayBuilder<kj::Promise<void>>(std::min(CONNECT_BATCH, held.size() - from));
      for (size_t i = from; i < std::min(from + CONNECT_BATCH, held.size()); ++i) {
        promises.add(setUpConnection(port, held[i], relay, counters));
      }
      kj::joinPromises(promises.finish()).wait(waitScope);
    }
    fmt::print(
        "load: {} mailboxes ({} envelopes each) over {} connections, each with a waiting get, set up in {:.1f} s\n",
        MAILBOXES, ENVELOPES_PER_MAILBOX, CONNECTIONS, seconds(loadStart));
    // The reference starts before the settling pause, so that its own start is not in the window.
    Child reference({onPath("sleep"), std::to_string(windowS + REFERENCE_MARGIN_S)}, ws.logPath("sleep"));
    port.getTimer().afterDelay(SETTLE_MS * kj::MILLISECONDS).wait(waitScope);
    printMemory("relay holding the load:                        ", relayNode->pid());
    size_t logBefore = relayNode->log().size();
    Sample relayStart = sample(relayNode->pid());
    Sample refStart = sample(reference.pid());
    // The bench's loop runs through the window (its connections answer the relay, if it asks).
    port.getTimer().afterDelay(windowS * kj::SECONDS).wait(waitScope);
    Sample relayEnd = sample(relayNode->pid());
    Sample refEnd = sample(reference.pid());
    if (relayNode->poll()) {
      throw std::runtime_error("the relay exited during the window; its log:\n" +
                               lastLines(relayNode->log(), LOG_LINES_QUOTED));
    }
    if (reference.poll()) throw std::runtime_error("the reference process exited during the window");
    relayIdle = idleOver(relayStart, relayEnd);
    refIdle = idleOver(refStart, refEnd);
    loadedMemory = memoryOf(relayNode->pid());
    std::string log = relayNode->log();
    if (log.size() > logBefore) fmt::print("note: the relay logged during the window:\n{}", log.substr(logBefore));
    if (counters.answered + counters.failed > 0) {
      fmt::print("note: {} waiting gets answered and {} failed during the window{}\n", counters.answered,
                 counters.failed, counters.lastFailure.empty() ? "" : " (" + counters.lastFailure + ")");
    }
    printMemory("relay after the window:                        ", relayNode->pid());
    fmt::print("relay (kith relay serve, {} connections idle): {:6.2f} wake-ups/s, {:.3f}% CPU over {:.1f} s\n",
               CONNECTIONS, relayIdle.wakeupsPerS, relayIdle.cpuPercent, relayIdle.seconds);
    fmt::print("reference: an idle `sleep` process:            {:6.2f} wake-ups/s, {:.3f}% CPU over {:.1f} s\n",
               refIdle.wakeupsPerS, refIdle.cpuPercent, refIdle.seconds);
    reference.stop(SIGTERM);
    // Closing: the waiting gets first, then the capabilities and the connections.
    for (auto& h : held) h.waiting = nullptr;
    for (auto& h : held) h.mailboxes.clear();
    held.clear();
    port.getTimer().afterDelay(100 * kj::MILLISECONDS).wait(waitScope);
  }

  // --- direct: the relay stopped, the writer serves, R1 syncs from it.
  if (relayNode->stop(SIGTERM) != 0) {
    throw std::runtime_error("the relay did not stop cleanly:\n" + lastLines(relayNode->log(), LOG_LINES_QUOTED));
  }
  relayNode.reset();
  double directSeconds = 0;
  {
    uint16_t writerPort = freePort();
    auto writerNode = ws.serve("writer", writer.path, writerPort);
    // R1 knows the writer at the address of its follow: point it at this one.
    cli::Home r1Home(r1.path);
    cli::Config config = cli::Config::load(r1Home);
    for (auto& p : config.peers) p.port = writerPort;
    config.save(r1Home);
    auto syncStart = Clock::now();
    Child sync({ws.kith, "--home", r1.path, "sync"}, ws.logPath("r1-sync"));
    directSeconds = timeUntilHeld(r1.path, journal, expected, sync, syncStart, "direct (R1)");
    if (writerNode->stop(SIGTERM) != 0) throw std::runtime_error("the writer's node did not stop cleanly");
  }

  // --- relay: the relay serves again; the writer pushes, R2 pulls.
  relayNode = serveRelay(ws, relay);
  auto pushStart = Clock::now();
  ws.run(writer.path, {"sync"});
  double pushSeconds = seconds(pushStart);
  {
    cli::Home r2Home(r2.path);
    cli::Config config = cli::Config::load(r2Home);
    config.peers.clear();  // only the relay may serve R2
    config.save(r2Home);
  }
  auto pullStart = Clock::now();
  double pullSeconds = 0;
  {
    Child sync({ws.kith, "--home", r2.path, "sync"}, ws.logPath("r2-sync"));
    pullSeconds = timeUntilHeld(r2.path, journal, expected, sync, pullStart, "through the relay (R2)");
  }
  // --- live: R2's node serves (its relay link waits on the mailbox), the writer gains N more
  // entries and pushes them with `kith sync`; timed from the push's start until R2 holds them all,
  // so pushing and pulling overlap as they do when both households are on.
  double liveSeconds = 0;
  uint64_t expectedLive = 0;
  {
    auto r2Node = ws.serve("r2", r2.path, freePort());
    r2Node->waitForLog("mailbox of epoch");
    {
      auto s = cli::Home(writer.path).openStore();
      appendUpdates(*s, writer, journal, n, TEXT_BYTES);
      expectedLive = entryCount(*s, journal);
    }
    auto liveStart = Clock::now();
    Child push({ws.kith, "--home", writer.path, "sync"}, ws.logPath("writer-live-sync"));
    auto s = cli::Home(r2.path).openStore();
    while (entryCount(*s, journal) < expectedLive) {
      if (std::optional<int> code = push.poll(); code && *code != 0) {
        throw std::runtime_error(fmt::format("live: the writer's kith sync exited {}:\n{}", *code, push.log()));
      }
      if (seconds(liveStart) * 1000 > TRANSFER_TIMEOUT_MS) {
        throw std::runtime_error(fmt::format("live: R2 holds {} of {} entries after {} s; its log:\n{}",
                                             entryCount(*s, journal), expectedLive, TRANSFER_TIMEOUT_MS / 1000,
                                             lastLines(r2Node->log(), LOG_LINES_QUOTED)));
      }
      ::usleep(CHILD_POLL_US);
    }
    liveSeconds = seconds(liveStart);
    if (push.wait(TRANSFER_TIMEOUT_MS) != 0)
      throw std::runtime_error("live: the writer's kith sync failed:\n" + push.log());
    if (r2Node->stop(SIGTERM) != 0) throw std::runtime_error("R2's node did not stop cleanly");
  }
  printMemory("relay after the transfers:                     ", relayNode->pid());
  if (relayNode->stop(SIGTERM) != 0) {
    throw std::runtime_error("the relay did not stop cleanly:\n" + lastLines(relayNode->log(), LOG_LINES_QUOTED));
  }

  uint64_t r1Count = entryCountAt(r1.path, journal);
  uint64_t r2Count = entryCountAt(r2.path, journal);
  if (r1Count != expected || r2Count != expectedLive) {
    throw std::runtime_error(
        fmt::format("R1 holds {} of {} and R2 {} of {} entries", r1Count, expected, r2Count, expectedLive));
  }

  double verifyAfter = verifyRate();
  double verifyPerS = (verifyBefore + verifyAfter) / 2;
  double directRate = static_cast<double>(n) / directSeconds;
  double relayRate = static_cast<double>(n) / (pushSeconds + pullSeconds);
  double ratio = relayRate / directRate;
  double liveRate = static_cast<double>(n) / liveSeconds;
  double liveRatio = liveRate / directRate;
  fmt::print("reference: ed25519 verify {:.0f}/s (256-byte messages, one thread; {:.0f} before, {:.0f} after)\n",
             verifyPerS, verifyBefore, verifyAfter);
  fmt::print(
      "direct (R1 kith sync from the writer's kith serve): {} entries in {:.2f} s = {:8.0f} entries/s = {:.2f} x "
      "verify\n",
      n, directSeconds, directRate, directRate / verifyPerS);
  fmt::print(
      "through the relay: push (writer kith sync) {:.2f} s + pull (R2 kith sync) {:.2f} s = {:.2f} s: {:8.0f} "
      "envelopes/s = {:.2f} x verify\n",
      pushSeconds, pullSeconds, pushSeconds + pullSeconds, relayRate, relayRate / verifyPerS);
  fmt::print(
      "through the relay, live (R2 kith serve pulling while the writer's kith sync pushes): {} entries in {:.2f} s = "
      "{:8.0f} envelopes/s = {:.2f} x verify\n",
      n, liveSeconds, liveRate, liveRate / verifyPerS);
  fmt::print("ratio relay/direct: store-and-forward (push, then pull) {:.2f}, live {:.2f} (goal >= {:.1f}: {})\n",
             ratio, liveRatio, RATIO_GOAL, liveRatio >= RATIO_GOAL ? "met live" : "NOT met");
  fmt::print(
      "relay memory: empty {:.1f} MB; with {} mailboxes and {} connections RSS {:.1f} MB, peak {:.1f} MB "
      "(goal < {:.0f} MB: {})\n",
      megabytes(emptyMemory.rssBytes), MAILBOXES, CONNECTIONS, megabytes(loadedMemory.rssBytes),
      megabytes(loadedMemory.hwmBytes), RSS_GOAL_MB,
      megabytes(loadedMemory.hwmBytes) < RSS_GOAL_MB ? "met" : "NOT met");
  fmt::print(
      "relay_rss_mb={:.1f} relay_hwm_mb={:.1f} relay_envelopes_per_s={:.0f} direct_entries_per_s={:.0f} "
      "ratio={:.2f} live_ratio={:.2f} relay_wakeups_per_s={:.2f} verify_per_s={:.0f}\n",
      megabytes(loadedMemory.rssBytes), megabytes(loadedMemory.hwmBytes), relayRate, directRate, ratio, liveRatio,
      relayIdle.wakeupsPerS, verifyPerS);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  crypto::init();
  installSignalHandlers("relay-bench");
  try {
    return runBench(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "relay-bench: {}\n", e.what());
    return 1;
  } catch (const kj::Exception& e) {
    fmt::print(stderr, "relay-bench: {}\n", e.getDescription().cStr());
    return 1;
  }
}
