// What an idle `kith serve` costs: how often it wakes, the CPU it uses and the memory it holds
// while nothing happens, printed beside an idle `sleep` process measured the same way in the same
// run (the floor: a process that never wakes).
//
//   idle-bench [SECONDS] [--kith PATH]
//     SECONDS  the observation window (default 30)
//     --kith   the `kith` binary (default $KITH_BIN, else ../cli/kith beside this binary)
//   KITH_BENCH_KEEP=1 keeps the temporary homes and the children's logs.
//
// Setup: node A's home is written with the library (a journal of a few entries; B granted as a
// subscriber); `kith follow` on B fetches it from A's `kith serve`; then B's `kith serve` dials A.
// Once both logs say "journal XXXXXXXX: replicating" (each has subscribed to the other) and a
// settling pause has passed, each process is read from /proc at the start and at the end of the
// window:
// - wake-ups: voluntary + involuntary context switches summed over the process's threads
//   (/proc/PID/task/*/status): each time a thread went to sleep and was woken, or was preempted;
// - CPU: utime + stime of /proc/PID/stat (clock ticks, so a resolution of one tick over the
//   window), and the scheduler's own count of time on a CPU (/proc/PID/task/*/schedstat, ns);
// - memory: VmRSS at the end.
// The last line is machine-readable, A's figures first:
//   wakeups_per_s=X.XX cpu_percent=X.XXX rss_mb=X.X b_wakeups_per_s=X.XX b_cpu_percent=X.XXX
//   b_rss_mb=X.X reference_wakeups_per_s=X.XX
#include <fmt/core.h>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench/bench-support.h"
#include "crypto/sodium.h"
#include "store/journal.h"

using namespace kith;
using namespace kith::bench;

namespace {

constexpr unsigned WINDOW_DEFAULT_S = 30;
// Bounds on the window argument.
constexpr unsigned WINDOW_MIN_S = 1;
constexpr unsigned WINDOW_MAX_S = 3600;
// After both nodes replicate: time for the first exchanges (subscriptions, version vectors) to end.
constexpr int SETTLE_MS = 2000;
// Entries in A's journal besides its genesis and grant, and their text size.
constexpr size_t ENTRIES = 5;
constexpr size_t TEXT_BYTES = 256;
// The reference `sleep` outlives the window by this much (it is killed at the end anyway).
constexpr unsigned REFERENCE_MARGIN_S = 60;
constexpr double PERCENT = 100;

// The scheduler's count of the time the process's threads spent on a CPU (ns precision; the first
// field of /proc/PID/task/TID/schedstat), in seconds; nullopt where the kernel keeps no schedstat.
std::optional<double> onCpuSecondsOf(int pid) {
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return std::nullopt;
  double total = 0;
  bool any = false;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(tasks + "/" + e->d_name + "/schedstat");
    double onCpuNs = 0;
    if (in >> onCpuNs) {
      total += onCpuNs / 1e9;
      any = true;
    }
  }
  closedir(dir);
  if (!any) return std::nullopt;
  return total;
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

struct Sample {
  Clock::time_point at;
  uint64_t contextSwitches = 0;
  double cpuSeconds = 0;
  std::optional<double> onCpuSeconds;
};

Sample sample(int pid) {
  Sample s;
  s.at = Clock::now();
  s.contextSwitches = contextSwitchesOf(pid);
  s.cpuSeconds = cpuSecondsOf(pid);
  s.onCpuSeconds = onCpuSecondsOf(pid);
  return s;
}

struct Idle {
  double seconds = 0;
  double wakeupsPerS = 0;
  double cpuPercent = 0;               // utime + stime over the window
  std::optional<double> onCpuPercent;  // the scheduler's clock, when it has one
  Memory memory;                       // at the end
  uint64_t threads = 0;                // at the end
};

Idle idleOver(int pid, const Sample& start, const Sample& end) {
  Idle r;
  r.seconds = std::chrono::duration<double>(end.at - start.at).count();
  r.wakeupsPerS = static_cast<double>(end.contextSwitches - start.contextSwitches) / r.seconds;
  r.cpuPercent = PERCENT * (end.cpuSeconds - start.cpuSeconds) / r.seconds;
  if (start.onCpuSeconds && end.onCpuSeconds) {
    r.onCpuPercent = PERCENT * (*end.onCpuSeconds - *start.onCpuSeconds) / r.seconds;
  }
  r.memory = memoryOf(pid);
  r.threads = threadCountOf(pid);
  return r;
}

void report(const char* what, const Idle& r) {
  std::string scheduler = r.onCpuPercent ? fmt::format(" ({:.4f}% by the scheduler's clock)", *r.onCpuPercent) : "";
  fmt::print("{} {:6.2f} wake-ups/s, {:.3f}% CPU{}, RSS {:.1f} MB ({:.1f} MB its own), {} thread{} over {:.1f} s\n",
             what, r.wakeupsPerS, r.cpuPercent, scheduler, megabytes(r.memory.rssBytes), megabytes(r.memory.anonBytes),
             r.threads, r.threads == 1 ? "" : "s", r.seconds);
}

int runBench(int argc, char** argv) {
  std::string kithPath = defaultKith();
  unsigned windowS = WINDOW_DEFAULT_S;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--kith" && i + 1 < argc) {
      kithPath = argv[++i];
    } else if (!arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos) {
      // Out of range (even past ULONG_MAX, which strtoul saturates to) is refused below.
      unsigned long value = std::strtoul(arg.c_str(), nullptr, 10);
      windowS = value > WINDOW_MAX_S ? WINDOW_MAX_S + 1 : static_cast<unsigned>(value);
    } else {
      fmt::print(stderr, "usage: idle-bench [SECONDS] [--kith PATH]\n");
      return 2;
    }
  }
  if (windowS < WINDOW_MIN_S || windowS > WINDOW_MAX_S) {
    fmt::print(stderr, "the window is {} to {} seconds\n", WINDOW_MIN_S, WINDOW_MAX_S);
    return 2;
  }
  if (access(kithPath.c_str(), X_OK) != 0) {
    fmt::print(stderr, "cannot run {}: give the kith binary with --kith PATH or KITH_BIN\n", kithPath);
    return 2;
  }
  unsetenv("KITH_HOME");
  unsetenv("KITH_PASSPHRASE");

  TempWorkspace workspace("kith-idle-bench");
  Workspace ws{workspace.path(), kithPath};

  // --- A owns a journal of a few entries and has granted B.
  NodeHome a = makeHome(ws.root + "/a", "A");
  NodeHome b = makeHome(ws.root + "/b", "B");
  store::JournalId journal{};
  {
    auto s = cli::Home(a.path).openStore();
    store::Keyring keyring = a.keyring();
    journal = store::createJournal(*s, keyring, "idle bench");
    store::addMember(*s, keyring, journal, b.identity.publicKey(), protocol::Role::SUBSCRIBER);
    appendUpdates(*s, a, journal, ENTRIES, TEXT_BYTES);
  }
  std::string journalHex = toHex(journal);

  // --- A serves; B follows the journal from A (a first sync), then serves and dials A.
  uint16_t aPort = freePort();
  std::string aAddress = "127.0.0.1:" + std::to_string(aPort);
  auto aNode = ws.serve("a", a.path, aPort);
  ws.run(b.path, {"follow", journalHex, "--peer", aAddress, "--key", a.id()});
  auto bNode = ws.serve("b", b.path, freePort());
  std::string replicating = "journal " + journalHex.substr(0, 8) + ": replicating";
  aNode->waitForLog(replicating);
  bNode->waitForLog(replicating);

  // --- the reference: a process that sleeps through the window.
  Child reference({onPath("sleep"), std::to_string(windowS + REFERENCE_MARGIN_S)}, ws.logPath("sleep"));

  fmt::print("A and B replicate journal {}; settling {} ms, then watching for {} s\n", journalHex.substr(0, 8),
             SETTLE_MS, windowS);
  std::this_thread::sleep_for(std::chrono::milliseconds(SETTLE_MS));

  // Anything the nodes log during the window (a reconnect, an error) is named: it is not idleness.
  size_t aLogBefore = aNode->log().size();
  size_t bLogBefore = bNode->log().size();
  Sample aStart = sample(aNode->pid());
  Sample bStart = sample(bNode->pid());
  Sample refStart = sample(reference.pid());
  std::this_thread::sleep_for(std::chrono::seconds(windowS));
  Sample aEnd = sample(aNode->pid());
  Sample bEnd = sample(bNode->pid());
  Sample refEnd = sample(reference.pid());
  for (auto [name, child] : {std::pair{"A", aNode.get()}, std::pair{"B", bNode.get()}}) {
    if (child->poll()) {
      throw std::runtime_error(fmt::format("{}'s node exited during the window; its log:\n{}", name,
                                           lastLines(child->log(), LOG_LINES_QUOTED)));
    }
  }
  if (reference.poll()) throw std::runtime_error("the reference process exited during the window");
  Idle aIdle = idleOver(aNode->pid(), aStart, aEnd);
  Idle bIdle = idleOver(bNode->pid(), bStart, bEnd);
  Idle refIdle = idleOver(reference.pid(), refStart, refEnd);

  for (auto [name, child, before] :
       {std::tuple{"A", aNode.get(), aLogBefore}, std::tuple{"B", bNode.get(), bLogBefore}}) {
    std::string log = child->log();
    if (log.size() > before) fmt::print("note: {} logged during the window:\n{}", name, log.substr(before));
  }
  report("A (kith serve, owner, one peer connected):", aIdle);
  report("B (kith serve, follower, dialled A):      ", bIdle);
  report("reference: an idle `sleep` process:       ", refIdle);

  reference.stop(SIGTERM);  // ends by the signal (-1), or is killed: either way it is gone
  if (bNode->stop(SIGTERM) != 0) throw std::runtime_error("B's node did not stop cleanly");
  if (aNode->stop(SIGTERM) != 0) throw std::runtime_error("A's node did not stop cleanly");

  fmt::print(
      "wakeups_per_s={:.2f} cpu_percent={:.3f} rss_mb={:.1f} b_wakeups_per_s={:.2f} b_cpu_percent={:.3f} "
      "b_rss_mb={:.1f} reference_wakeups_per_s={:.2f}\n",
      aIdle.wakeupsPerS, aIdle.cpuPercent, megabytes(aIdle.memory.rssBytes), bIdle.wakeupsPerS, bIdle.cpuPercent,
      megabytes(bIdle.memory.rssBytes), refIdle.wakeupsPerS);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  crypto::init();
  installSignalHandlers("idle-bench");
  try {
    return runBench(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "idle-bench: {}\n", e.what());
    return 1;
  }
}
