// Replication between real `kith serve` processes: catch-up throughput of a large journal and the
// latency from `kith post` on the owner to readable on subscribed nodes, printed beside the
// Ed25519 verify rate measured in the same run (a receiver verifies every entry once, so
// entries/s ÷ verify/s says how close replication comes to its cryptographic floor).
//
//   replication-bench [N] [FOLLOWERS] [POSTS] [--kith PATH]
//     N          entries in the owner's journal (default 100000, 256-byte texts)
//     FOLLOWERS  subscribed nodes for the second latency figure (default 20)
//     POSTS      posts measured for each latency figure (default 10)
//     --kith     the `kith` binary (default $KITH_BIN, else ../cli/kith beside this binary)
//   KITH_BENCH_KEEP=1 keeps the temporary homes and the children's logs.
//
// Phases:
// - prepare: node A's home is written with the library (the journal, N entries signed and
//   appended in batches of 1000, the members granted); no process involved, not timed as
//   replication;
// - sync: `kith follow` on B1 while A serves: the sequential ranged fetch, until it exits;
// - live: `kith serve` on B2 (which already follows the journal): A pushes through the
//   subscription, until B2's store holds every entry;
// - latency: a small second journal; `kith post` on A, timed from the post's start until each
//   follower's store holds the entry, with 1 and then FOLLOWERS nodes serving;
// - memory: while the FOLLOWERS nodes still serve, the resident memory of A (VmRSS now, VmHWM its
//   peak since it started) and of the followers, from /proc.
// The bench reads the followers' stores directly (LMDB readers beside the writing process).
// Every child is killed when the bench exits, fails, or is interrupted.
//
// Figures: entries/s and MB/s (signed, encrypted entries as stored) for each path, the ratio to
// the verify rate (the best path's), and the receiver's entries per CPU-second over the verify
// rate (receiver_cpu_ratio: the ratio it would reach with a core to itself; on a shared machine
// the wall-clock ratio also counts the time others had the CPU). The core count is printed beside
// the single-core verify rate. The last line is machine-readable:
//   entries_per_s=N verify_per_s=N ratio=X.XX mb_per_s=X ... latency_20_max_ms=X a_rss_mb=X
//   a_hwm_mb=X cores=N
#include <fmt/core.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench-support.h"
#include "crypto/sodium.h"
#include "store/journal.h"

using namespace kith;
using namespace kith::bench;

namespace {

constexpr size_t ENTRIES_DEFAULT = 100000;
constexpr size_t FOLLOWERS_DEFAULT = 20;
constexpr size_t POSTS_DEFAULT = 10;
constexpr size_t TEXT_BYTES = 256;
// Children the bench may have running at once (A, the followers, one command): a bound on FOLLOWERS.
constexpr size_t CHILDREN_MAX = 64;
constexpr int ARRIVAL_TIMEOUT_MS = 20000;
constexpr int CATCH_UP_TIMEOUT_MS = 1800000;
// Posts are spaced by a random pause up to this long: posting right after the previous arrival
// would lock the posts to the owner node's store-poll phase and measure the same delay each time.
constexpr int POST_SPACING_MAX_MS = 250;

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct VerifyRate {
  double perSecond = 0;     // wall clock: what the transfers' wall-clock rates compare with
  double perCpuSecond = 0;  // this thread's CPU time: what the receiver's CPU time compares with
};

// Ed25519 verify of 256-byte messages on this one thread, for at least 0.5 s.
VerifyRate verifyRate() {
  crypto::Identity id = crypto::Identity::generate();
  Bytes msg(256, 0x5a);
  crypto::Signature sig = id.sign(msg);
  auto start = Clock::now();
  double cpuStart = threadCpuSeconds();
  size_t n = 0;
  while (seconds(start) < 0.5) {
    for (int i = 0; i < 100; ++i) {
      if (!crypto::verify(id.publicKey(), msg, sig)) std::abort();
    }
    n += 100;
  }
  return {static_cast<double>(n) / seconds(start), static_cast<double>(n) / (threadCpuSeconds() - cpuStart)};
}

uint64_t entryCount(const store::Store& s, const store::JournalId& journal) {
  auto info = s.journal(journal);
  return info ? info->entryCount : 0;
}

uint64_t headSeq(const store::Store& s, const store::JournalId& journal, const crypto::PublicKey& author) {
  auto head = s.head(journal, author);
  return head ? head->seq : 0;
}

struct Follower {
  NodeHome home;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Child> node;
};

// Posts to the latency journal `posts` times; for each, the time from the start of `kith post` to
// the moment each of `followers` holds the entry. Returns every sample (ms).
std::vector<double> measureLatency(Workspace& ws, const NodeHome& owner, const std::string& journalHex,
                                   const store::JournalId& journal, std::vector<Follower*> followers, size_t posts,
                                   uint64_t& seq, std::vector<double>* postMs) {
  static std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pause(0, POST_SPACING_MAX_MS);
  std::vector<double> samples;
  for (size_t p = 0; p < posts; ++p) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause(rng)));
    uint64_t want = ++seq;
    std::vector<bool> arrived(followers.size(), false);
    size_t pending = followers.size();
    auto start = Clock::now();
    Child post({ws.kith, "--home", owner.path, "post", "--journal", journalHex, fmt::format("latency probe {}", want)},
               ws.logPath("post"));
    bool posted = false;
    while (pending > 0 || !posted) {
      if (!posted) {
        if (auto code = post.poll()) {
          if (*code != 0) throw std::runtime_error("kith post failed:\n" + post.log());
          posted = true;
          if (postMs) postMs->push_back(millis(start, Clock::now()));
        }
      }
      for (size_t i = 0; i < followers.size(); ++i) {
        if (arrived[i] || headSeq(*followers[i]->store, journal, owner.identity.publicKey()) < want) continue;
        arrived[i] = true;
        --pending;
        samples.push_back(millis(start, Clock::now()));
      }
      if (millis(start, Clock::now()) > ARRIVAL_TIMEOUT_MS) {
        throw std::runtime_error(fmt::format("post {} reached only {} of {} followers in {} ms", want,
                                             followers.size() - pending, followers.size(), ARRIVAL_TIMEOUT_MS));
      }
      if (pending > 0 || !posted) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  return samples;
}

struct Transfer {
  double seconds = 0;
  double receiverCpuSeconds = 0;       // the receiving process's whole life, user + system
  double receiverRunnableSeconds = 0;  // ... and the time it was runnable but had no CPU
  std::vector<double> decileSeconds;   // when 10%, 20%, ... 100% of the entries were held
};

// Times `node` (a `kith follow` that exits when done, or a `kith serve` that is stopped once done)
// until the store at `home` holds `expected` entries of `journal`, noting each tenth on the way.
Transfer transfer(const std::string& home, const store::JournalId& journal, uint64_t expected,
                  std::unique_ptr<Child> node, bool exits) {
  auto s = cli::Home(home).openStore();
  auto start = Clock::now();
  Transfer t;
  uint64_t got = 0;
  for (;;) {
    if (auto stat = node->schedStat()) t.receiverRunnableSeconds = stat->second;
    got = entryCount(*s, journal);
    while (t.decileSeconds.size() < 10 && got * 10 >= expected * (t.decileSeconds.size() + 1)) {
      t.decileSeconds.push_back(seconds(start));
    }
    if (got >= expected) break;
    std::optional<int> code = node->poll();
    if ((code && (*code != 0 || entryCount(*s, journal) < expected)) || seconds(start) * 1000 > CATCH_UP_TIMEOUT_MS) {
      throw std::runtime_error(fmt::format("{} holds {} of {} entries; its log:\n{}", home, entryCount(*s, journal),
                                           expected, lastLines(node->log(), 20)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  t.seconds = seconds(start);
  if (exits) {
    if (node->wait(COMMAND_TIMEOUT_MS) != 0) throw std::runtime_error("kith follow failed:\n" + node->log());
  } else if (node->stop(SIGTERM) != 0) {
    throw std::runtime_error("a node did not stop cleanly:\n" + lastLines(node->log(), 20));
  }
  t.receiverCpuSeconds = node->cpuSeconds();
  return t;
}

void report(const char* what, const Transfer& t, uint64_t entries, uint64_t bytes, double verifyPerS,
            double verifyPerCpuS) {
  double rate = static_cast<double>(entries) / t.seconds;
  fmt::print("{} {} entries in {:.2f} s = {:8.0f} entries/s, {:6.1f} MB/s = {:.2f} x verify\n", what, entries,
             t.seconds, rate, static_cast<double>(bytes) / 1e6 / t.seconds, rate / verifyPerS);
  // Per CPU-second of the receiver: what the ratio would be with a core to itself (on a shared
  // machine the wall-clock rate also counts the time other processes had the CPU).
  double perCpu = static_cast<double>(entries) / std::max(t.receiverCpuSeconds, 1e-6);
  fmt::print(
      "    receiver CPU {:.2f} s ({:.0f}% of the wall time): {:.0f} entries per CPU-second = {:.2f} x verify "
      "per CPU-second\n",
      t.receiverCpuSeconds, 100 * t.receiverCpuSeconds / t.seconds, perCpu, perCpu / verifyPerCpuS);
  double idle = std::max(0.0, t.seconds - t.receiverCpuSeconds - t.receiverRunnableSeconds);
  fmt::print(
      "    receiver's wall time: {:.0f}% on a CPU, {:.0f}% runnable but waiting for a CPU (other processes), "
      "{:.0f}% waiting for data\n",
      100 * t.receiverCpuSeconds / t.seconds, 100 * t.receiverRunnableSeconds / t.seconds, 100 * idle / t.seconds);
  // Entries/s in each tenth: a rate that falls as the store grows shows here.
  std::string tenths;
  double before = 0;
  for (double at : t.decileSeconds) {
    tenths += fmt::format(" {:.0f}", static_cast<double>(entries) / 10 / std::max(at - before, 1e-6));
    before = at;
  }
  fmt::print("    entries/s by tenth:{}\n", tenths);
}

int runBench(int argc, char** argv) {
  std::vector<size_t> numbers;
  std::string kithPath = defaultKith();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--kith" && i + 1 < argc) {
      kithPath = argv[++i];
    } else if (!arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos) {
      numbers.push_back(std::strtoul(arg.c_str(), nullptr, 10));
    } else {
      fmt::print(stderr, "usage: replication-bench [N] [FOLLOWERS] [POSTS] [--kith PATH]\n");
      return 2;
    }
  }
  size_t n = numbers.size() > 0 ? numbers[0] : ENTRIES_DEFAULT;
  size_t followerCount = std::max<size_t>(1, numbers.size() > 1 ? numbers[1] : FOLLOWERS_DEFAULT);
  size_t posts = std::max<size_t>(1, numbers.size() > 2 ? numbers[2] : POSTS_DEFAULT);
  if (access(kithPath.c_str(), X_OK) != 0) {
    fmt::print(stderr, "cannot run {}: give the kith binary with --kith PATH or KITH_BIN\n", kithPath);
    return 2;
  }
  if (followerCount + 4 > CHILDREN_MAX) {
    fmt::print(stderr, "at most {} followers\n", CHILDREN_MAX - 4);
    return 2;
  }
  unsetenv("KITH_HOME");
  unsetenv("KITH_PASSPHRASE");

  // The reference is measured before and after the transfers; their mean is used, and both are
  // printed, so that a change in the machine's load during the run shows.
  VerifyRate verifyBefore = verifyRate();
  // The core count beside it: the single-core rate times the cores is what a node verifying on
  // every core could reach at best.
  Cores machine = cores();
  fmt::print("reference: ed25519 verify {:.0f}/s on one thread; {} cores ({} usable by this process)\n",
             verifyBefore.perSecond, machine.hardware, machine.usable);

  // KITH_BENCH_KEEP=1 keeps the homes and the children's logs (in logs/) for a look afterwards.
  TempWorkspace workspace("kith-replication-bench");
  Workspace ws{workspace.path(), kithPath};

  // --- prepare: A's journal with N entries, B1 and B2 granted; a small journal for latency.
  auto start = Clock::now();
  NodeHome a = makeHome(ws.root + "/a", "A");
  NodeHome b1 = makeHome(ws.root + "/b-sync", "B1");
  NodeHome b2 = makeHome(ws.root + "/b-live", "B2");
  std::vector<Follower> followers;
  for (size_t i = 0; i < followerCount; ++i) {
    followers.push_back({makeHome(fmt::format("{}/f{:02}", ws.root, i), fmt::format("F{}", i)), nullptr, nullptr});
  }
  store::JournalId journal{};
  store::JournalId latencyJournal{};
  uint64_t payloadBytes = 0;
  uint64_t expected = 0;
  {
    auto s = cli::Home(a.path).openStore();
    store::Keyring keyring = a.keyring();
    journal = store::createJournal(*s, keyring, "replication bench");
    for (const NodeHome* b : {&b1, &b2}) {
      store::addMember(*s, keyring, journal, b->identity.publicKey(), protocol::Role::SUBSCRIBER);
    }
    payloadBytes = appendUpdates(*s, a, journal, n, TEXT_BYTES);
    for (const auto& e : s->rangePacked(journal, a.identity.publicKey(), 1, 3, SIZE_MAX)) payloadBytes += e.size();
    expected = entryCount(*s, journal);
    latencyJournal = store::createJournal(*s, keyring, "latency");
    for (const auto& f : followers) {
      store::addMember(*s, keyring, latencyJournal, f.home.identity.publicKey(), protocol::Role::SUBSCRIBER);
    }
  }
  std::string journalHex = toHex(journal);
  std::string latencyHex = toHex(latencyJournal);
  fmt::print("prepared {} entries ({:.1f} MB signed and encrypted) in {:.1f} s\n", expected,
             static_cast<double>(payloadBytes) / 1e6, seconds(start));

  uint16_t aPort = freePort();
  std::string aAddress = "127.0.0.1:" + std::to_string(aPort);
  // B2 follows before A is up: A cannot be asked, so the follow is saved unchecked (--anyway) for
  // `kith serve`, which then replicates through the live subscription.
  ws.run(b2.path, {"follow", journalHex, "--peer", aAddress, "--key", a.id(), "--anyway"});

  auto aNode = ws.serve("a", a.path, aPort);

  // --- sync: `kith follow` fetches everything in sequential ranged batches.
  Transfer sync =
      transfer(b1.path, journal, expected,
               std::make_unique<Child>(std::vector<std::string>{ws.kith, "--home", b1.path, "follow", journalHex,
                                                                "--peer", aAddress, "--key", a.id()},
                                       ws.logPath("follow")),
               true);

  // --- live: B2's node subscribes; A pushes with PUSHES_IN_FLIGHT_MAX in flight.
  Transfer live = transfer(b2.path, journal, expected,
                           std::make_unique<Child>(std::vector<std::string>{ws.kith, "--home", b2.path, "serve",
                                                                            "--listen", "127.0.0.1:0", "--no-web"},
                                                   ws.logPath("b-live")),
                           false);
  VerifyRate verifyAfter = verifyRate();
  double verifyPerS = (verifyBefore.perSecond + verifyAfter.perSecond) / 2;
  double verifyPerCpuS = (verifyBefore.perCpuSecond + verifyAfter.perCpuSecond) / 2;
  fmt::print(
      "reference: ed25519 verify {:.0f}/s (256-byte messages, one thread; {:.0f} before the transfers, "
      "{:.0f} after), {:.0f} per CPU-second\n",
      verifyPerS, verifyBefore.perSecond, verifyAfter.perSecond, verifyPerCpuS);
  report("sync (kith follow, ranged fetch): ", sync, expected, payloadBytes, verifyPerS, verifyPerCpuS);
  report("live (kith serve, subscription):  ", live, expected, payloadBytes, verifyPerS, verifyPerCpuS);
  double syncSeconds = sync.seconds;
  double liveSeconds = live.seconds;
  double syncRate = static_cast<double>(expected) / syncSeconds;
  double liveRate = static_cast<double>(expected) / liveSeconds;

  double bestSeconds = std::min(syncSeconds, liveSeconds);
  double entriesPerS = static_cast<double>(expected) / bestSeconds;
  double mbPerS = static_cast<double>(payloadBytes) / 1e6 / bestSeconds;
  double ratio = entriesPerS / verifyPerS;
  double cpuRatio = std::max(static_cast<double>(expected) / std::max(sync.receiverCpuSeconds, 1e-6),
                             static_cast<double>(expected) / std::max(live.receiverCpuSeconds, 1e-6)) /
                    verifyPerCpuS;

  // --- latency: every follower follows the small journal (a quick first sync), then serves.
  for (auto& f : followers) {
    ws.run(f.home.path, {"follow", latencyHex, "--peer", aAddress, "--key", a.id()});
    f.store = cli::Home(f.home.path).openStore();
  }
  uint64_t seq = 1 + followers.size();  // the genesis and one grant per follower
  auto startFollowers = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      followers[i].node = ws.serve(fmt::format("f{:02}", i), followers[i].home.path, freePort());
    }
    for (size_t i = from; i < to; ++i)
      followers[i].node->waitForLog("journal " + latencyHex.substr(0, 8) + ": replicating");
  };
  std::vector<Follower*> serving;
  startFollowers(0, 1);
  serving.push_back(&followers[0]);
  measureLatency(ws, a, latencyHex, latencyJournal, serving, 1, seq, nullptr);  // warm-up
  std::vector<double> postMs;
  std::vector<double> latency1 = measureLatency(ws, a, latencyHex, latencyJournal, serving, posts, seq, &postMs);
  startFollowers(1, followers.size());
  for (size_t i = 1; i < followers.size(); ++i) serving.push_back(&followers[i]);
  measureLatency(ws, a, latencyHex, latencyJournal, serving, 1, seq, nullptr);  // warm-up
  std::vector<double> latencyN = measureLatency(ws, a, latencyHex, latencyJournal, serving, posts, seq, &postMs);

  fmt::print("latency post -> readable, 1 node:    median {:.1f} ms, max {:.1f} ms ({} posts)\n",
             percentile(latency1, 0.5), percentile(latency1, 1), posts);
  fmt::print("latency post -> readable, {} nodes: median {:.1f} ms, max {:.1f} ms ({} posts x {} nodes)\n",
             followers.size(), percentile(latencyN, 0.5), percentile(latencyN, 1), posts, followers.size());
  fmt::print(
      "  (the 'kith post' process itself: median {:.1f} ms; the rest is the owner's node learning of the post "
      "and the push)\n",
      percentile(postMs, 0.5));

  // --- memory: A holds the large journal and serves every follower; read while they all serve.
  Memory aMemory = memoryOf(aNode->pid());
  std::vector<double> followerRssMb;
  for (auto& f : followers) followerRssMb.push_back(megabytes(memoryOf(f.node->pid()).rssBytes));
  fmt::print(
      "memory: node A ({} entries, serving {} nodes) RSS {:.1f} MB ({:.1f} MB its own, {:.1f} MB pages of mapped "
      "files: the store, the program and its libraries), peak {:.1f} MB (since it started: the sync and live phases "
      "included); a follower's "
      "RSS median {:.1f} MB, max {:.1f} MB\n",
      expected, followers.size(), megabytes(aMemory.rssBytes), megabytes(aMemory.anonBytes),
      megabytes(aMemory.fileBytes), megabytes(aMemory.hwmBytes), percentile(followerRssMb, 0.5),
      percentile(followerRssMb, 1));

  for (auto& f : followers) {
    if (f.node->stop(SIGTERM) != 0) throw std::runtime_error("a follower's node did not stop cleanly");
  }
  if (aNode->stop(SIGTERM) != 0) throw std::runtime_error("A's node did not stop cleanly");

  fmt::print(
      "entries_per_s={:.0f} verify_per_s={:.0f} ratio={:.2f} mb_per_s={:.1f} sync_entries_per_s={:.0f} "
      "live_entries_per_s={:.0f} receiver_cpu_ratio={:.2f} latency_1_ms={:.1f} latency_{}_median_ms={:.1f} "
      "latency_{}_max_ms={:.1f} a_rss_mb={:.1f} a_hwm_mb={:.1f} cores={}\n",
      entriesPerS, verifyPerS, ratio, mbPerS, syncRate, liveRate, cpuRatio, percentile(latency1, 0.5), followers.size(),
      percentile(latencyN, 0.5), followers.size(), percentile(latencyN, 1), megabytes(aMemory.rssBytes),
      megabytes(aMemory.hwmBytes), machine.usable);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  crypto::init();
  installSignalHandlers("replication-bench");
  try {
    return runBench(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "replication-bench: {}\n", e.what());
    return 1;
  }
}
