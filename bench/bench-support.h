// What the benches that run real `kith` processes share (replication-bench, idle-bench): finding
// the `kith` binary, a temporary workspace of homes and logs, children that die with the bench,
// homes written with the library, and readings of a running process from /proc.
//
// Each bench is a program of its own; this header is included by one translation unit per
// program, so everything here is inline.
//
// Caveats:
// - installSignalHandlers() names the workspace on SIGINT/SIGTERM/SIGHUP; the children die with
//   the bench anyway (PR_SET_PDEATHSIG).
// - The /proc readings are Linux-only, and a thread that exited during a window takes its context
//   switches with it (only live threads are summed).
#pragma once
#include <fmt/core.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli/home.h"
#include "crypto/key-file.h"
#include "crypto/keys.h"
#include "store/journal.h"
#include "tests/support/subprocess.h"

namespace kith::bench {

using Clock = std::chrono::steady_clock;

// How long a `kith serve` may take to say it listens (and a log line to appear), and how long a
// stopped child may take to exit.
constexpr int READY_TIMEOUT_MS = 30000;
// How long a one-shot `kith` command may run.
constexpr int COMMAND_TIMEOUT_MS = 600000;
// Entries appended by appendUpdates() in one write transaction.
constexpr size_t APPEND_BATCH = 1000;
// How often Child::wait() looks whether the child has exited.
constexpr int CHILD_POLL_US = 500;
// Lines of a child's log quoted when it fails.
constexpr size_t LOG_LINES_QUOTED = 20;
// Bytes in a MB as the benches print them (decimal, as in MB/s).
constexpr double BYTES_PER_MB = 1e6;

inline double seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }
inline double millis(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

inline std::string lastLines(const std::string& text, size_t lines) {
  size_t at = text.size();
  for (size_t i = 0; i <= lines && at != std::string::npos && at > 0; ++i) at = text.rfind('\n', at - 1);
  return at == std::string::npos ? text : text.substr(at + 1);
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// ---------------------------------------------------------------------------------------------
// Interrupts: the workspace is named when an interrupt leaves it behind.

inline char programName[NAME_MAX + 1];
inline char workspacePath[PATH_MAX];

extern "C" inline void onBenchSignal(int sig) {
  if (workspacePath[0] != '\0') {
    static const char message[] = ": interrupted; the workspace is left in ";
    (void)!write(2, programName, strlen(programName));
    (void)!write(2, message, sizeof message - 1);
    (void)!write(2, workspacePath, strlen(workspacePath));
    (void)!write(2, "\n", 1);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

inline void installSignalHandlers(const char* name) {
  std::snprintf(programName, sizeof programName, "%s", name);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, onBenchSignal);
}

// ---------------------------------------------------------------------------------------------
// Children run with the tests' process harness (tests/support/subprocess.h), each with its output
// in a log file of the workspace. A child dies with the bench (PR_SET_PDEATHSIG), whether the bench
// fails, is interrupted or is killed outright, and a Child that goes away kills its process.

inline test::RunOptions childOptions(const std::string& logPath) {
  test::RunOptions options;
  options.outputPath = logPath;
  options.dieWithParent = true;
  return options;
}

// A process (`kith`, or a reference such as `sleep`) whose stdout and stderr go to `logPath`.
class Child {
public:
  Child(const std::vector<std::string>& argv, const std::string& logPath) : process_(argv, childOptions(logPath)) {}

  int pid() const { return process_.pid(); }

  // The exit code once the child has exited (-1 for a signal), nullopt while it runs.
  std::optional<int> poll() { return process_.tryWait(); }

  int wait(int timeoutMs) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
      if (auto code = poll()) return *code;
      if (Clock::now() >= deadline) throw std::runtime_error("a kith command ran past its deadline:\n" + log());
      std::this_thread::sleep_for(std::chrono::microseconds(CHILD_POLL_US));
    }
  }

  // Sends `sig`; the exit code, or -1 when it did not exit within READY_TIMEOUT_MS (then killed).
  int stop(int sig) { return process_.stop(sig, READY_TIMEOUT_MS); }

  void waitForLog(const std::string& needle) {
    if (!process_.waitForOutput(needle, READY_TIMEOUT_MS)) {
      throw std::runtime_error("no '" + needle + "' in the log of a kith process:\n" +
                               lastLines(log(), LOG_LINES_QUOTED));
    }
  }

  // While the child runs: the seconds it has spent on a CPU and runnable but waiting for one
  // (/proc/PID/schedstat), nullopt once it has exited.
  std::optional<std::pair<double, double>> schedStat() {
    if (poll()) return std::nullopt;
    std::ifstream in("/proc/" + std::to_string(process_.pid()) + "/schedstat");
    double onCpuNs = 0, waitingNs = 0;
    if (!(in >> onCpuNs >> waitingNs)) return std::nullopt;
    return std::make_pair(onCpuNs / 1e9, waitingNs / 1e9);
  }

  // User + system CPU time the child used, once it has exited.
  double cpuSeconds() const { return process_.cpuSeconds(); }
  std::string log() { return process_.output(); }

private:
  test::Process process_;
};

// The temporary directory of one run: homes, and the children's logs in logs/. Removed when the
// bench ends, unless KITH_BENCH_KEEP=1 (then named, for a look afterwards).
class TempWorkspace {
public:
  explicit TempWorkspace(const std::string& prefix) {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
    if (mkdtemp(path_.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    std::snprintf(workspacePath, sizeof workspacePath, "%s", path_.c_str());
    std::filesystem::create_directories(path_ + "/logs");
  }
  ~TempWorkspace() {
    const char* keep = std::getenv("KITH_BENCH_KEEP");
    if (keep != nullptr && *keep != '\0' && *keep != '0') {
      fmt::print(stderr, "{}: the workspace is kept in {}\n", programName, path_);
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempWorkspace(const TempWorkspace&) = delete;
  TempWorkspace& operator=(const TempWorkspace&) = delete;

  const std::string& path() const { return path_; }

private:
  std::string path_;
};

struct Workspace {
  std::string root;
  std::string kith;
  unsigned serial = 0;

  std::string logPath(const std::string& name) { return root + "/logs/" + name + "." + std::to_string(++serial); }

  // Runs `kith --home HOME ARGS...` to completion; throws unless it exits with `expected`.
  std::string run(const std::string& home, const std::vector<std::string>& args, int expected = 0) {
    std::vector<std::string> argv{kith, "--home", home};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c(argv, logPath("cmd"));
    int code = c.wait(COMMAND_TIMEOUT_MS);
    if (code != expected) {
      throw std::runtime_error(
          fmt::format("'kith {}' exited {} (expected {}):\n{}", args.front(), code, expected, c.log()));
    }
    return c.log();
  }

  std::unique_ptr<Child> serve(const std::string& name, const std::string& home, uint16_t port) {
    auto c = std::make_unique<Child>(
        std::vector<std::string>{kith, "--home", home, "serve", "--listen", "127.0.0.1:" + std::to_string(port)},
        logPath(name));
    c->waitForLog("listening on 127.0.0.1:" + std::to_string(port));
    return c;
  }
};

// A loopback port free at the time of asking (`kith serve --listen 127.0.0.1:0` would do, but
// followers need their owner's address before the owner starts).
inline uint16_t freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  if (fd >= 0) close(fd);
  if (!ok) throw std::runtime_error("cannot find a free loopback port");
  return ntohs(addr.sin_port);
}

// The `kith` binary: $KITH_BIN, else ../cli/kith beside this bench's binary.
inline std::string defaultKith() {
  if (const char* env = std::getenv("KITH_BIN"); env != nullptr && *env != '\0') return env;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "kith";
  self[n] = '\0';
  return (std::filesystem::path(self).parent_path() / ".." / "cli" / "kith").lexically_normal().string();
}

// ---------------------------------------------------------------------------------------------
// Homes and journals written with the library, as `kith init --no-passphrase` and `kith post` would.

struct NodeHome {
  std::string path;
  crypto::Identity identity;
  crypto::SecretBuffer storageKey;

  store::Keyring keyring() const { return {identity, storageKey.view()}; }
  std::string id() const { return toHex(identity.publicKey()); }
};

inline NodeHome makeHome(const std::string& path, const std::string& name) {
  crypto::Identity identity = crypto::Identity::generate();
  crypto::SecretBuffer storageKey = identity.deriveKey("kithstor", 1);
  cli::Home home(path);
  home.create();
  home.writeKeyFile(crypto::writeKeyFile(identity, name, std::nullopt));
  home.createStore();  // the store exists before anyone reads it
  return {path, std::move(identity), std::move(storageKey)};
}

// Appends `n` signed updates of `textBytes` to the owner's journal, APPEND_BATCH per write
// transaction; returns their packed bytes.
inline uint64_t appendUpdates(store::Store& s, const NodeHome& owner, const store::JournalId& journal, size_t n,
                              size_t textBytes) {
  store::Keyring keyring = owner.keyring();
  auto epochKey = s.epochKey(journal, 0, keyring.storageKey);
  auto head = s.head(journal, owner.identity.publicKey());
  if (!epochKey || !head) throw std::runtime_error("the new journal has no epoch key or head");
  std::string text(textBytes, 'x');
  uint64_t bytes = 0;
  std::vector<protocol::Entry> batch;
  for (size_t i = 0; i < n; ++i) {
    std::string number = std::to_string(i);
    std::copy_n(number.begin(), std::min(number.size(), text.size()), text.begin());
    protocol::EntryDraft d;
    d.journal = journal;
    d.seq = head->seq + 1;
    d.prev = head->id;
    d.timestampMs = nowMs();
    d.body = protocol::Body{protocol::Kind::UPDATE, text, {}};
    batch.push_back(protocol::signEntry(owner.identity, d, epochKey->view()));
    bytes += crypto::SIGNATURE_BYTES + batch.back().bytes.size();
    head = store::Head{d.seq, batch.back().id};
    if (batch.size() == APPEND_BATCH || i + 1 == n) {
      for (const auto& outcome : s.appendBatch(batch, &keyring)) {
        if (outcome.status != store::AppendStatus::ADDED) throw std::runtime_error("append failed: " + outcome.message);
      }
      batch.clear();
    }
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// A running process seen from /proc (Linux).

// The CPUs of this machine, and those this process may run on (taskset, cgroup cpusets).
struct Cores {
  unsigned hardware = 0;  // std::thread::hardware_concurrency()
  unsigned usable = 0;    // sched_getaffinity's CPU count
};

inline Cores cores() {
  Cores c;
  c.hardware = std::thread::hardware_concurrency();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) c.usable = static_cast<unsigned>(CPU_COUNT(&set));
  return c;
}

// A "Name:   value kB" field of a /proc status file, nullopt when absent.
inline std::optional<uint64_t> statusField(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, name.size(), name) != 0 || line.size() <= name.size() || line[name.size()] != ':') continue;
    return std::strtoull(line.c_str() + name.size() + 1, nullptr, 10);
  }
  return std::nullopt;
}

// Resident memory now and at its peak (VmRSS, VmHWM of /proc/PID/status), in bytes. Of the
// resident memory, the anonymous part is the process's own (heap, stacks); the file part is pages
// of mapped files (the store, which LMDB maps, the program and its libraries), which the kernel
// can drop and read again under pressure.
struct Memory {
  uint64_t rssBytes = 0;
  uint64_t hwmBytes = 0;
  uint64_t anonBytes = 0;  // RssAnon
  uint64_t fileBytes = 0;  // RssFile
};

inline Memory memoryOf(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  auto rssKb = statusField(path, "VmRSS");
  auto hwmKb = statusField(path, "VmHWM");
  if (!rssKb || !hwmKb) throw std::runtime_error(fmt::format("cannot read the memory of process {}", pid));
  constexpr uint64_t KB = 1024;  // /proc's "kB"
  return {*rssKb * KB, *hwmKb * KB, statusField(path, "RssAnon").value_or(0) * KB,
          statusField(path, "RssFile").value_or(0) * KB};
}

inline double megabytes(uint64_t bytes) { return static_cast<double>(bytes) / BYTES_PER_MB; }

// Times the process's threads were switched out: each voluntary switch is a sleep that something
// later woke, each involuntary one a preemption. Summed over the live threads
// (/proc/PID/task/*/status; the process's own status counts its main thread only).
inline uint64_t contextSwitchesOf(int pid) {
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) throw std::runtime_error(fmt::format("cannot list the threads of process {}", pid));
  uint64_t total = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string status = tasks + "/" + e->d_name + "/status";
    total += statusField(status, "voluntary_ctxt_switches").value_or(0);
    total += statusField(status, "nonvoluntary_ctxt_switches").value_or(0);
  }
  closedir(dir);
  return total;
}

// The process's threads now (Threads: of /proc/PID/status).
inline uint64_t threadCountOf(int pid) {
  return statusField("/proc/" + std::to_string(pid) + "/status", "Threads").value_or(0);
}

// User + system CPU time of every thread of the process (utime + stime of /proc/PID/stat), in s.
inline double cpuSecondsOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  size_t close = text.rfind(')');
  if (close == std::string::npos) throw std::runtime_error(fmt::format("cannot read the CPU time of process {}", pid));
  std::istringstream fields(text.substr(close + 1));
  // Fields 3..13 (state ... cmajflt), then 14 utime and 15 stime, in clock ticks.
  constexpr int FIELDS_BEFORE_UTIME = 11;
  std::string skip;
  for (int i = 0; i < FIELDS_BEFORE_UTIME; ++i) fields >> skip;
  uint64_t utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) {
    throw std::runtime_error(fmt::format("cannot read the CPU time of process {}", pid));
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace kith::bench
