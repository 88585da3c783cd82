// Runs a real program (the `kith` binary) in tests and benchmarks: arguments, extra environment,
// stdin, captured stdout and stderr, and a deadline after which the child is killed (a hang fails
// the test). Nothing here uses Catch, so that bench/ can link it; tests/support/kith-process.h
// adds the checks a test makes on a finished `kith` command.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kith::test {

struct RunResult {
  std::vector<std::string> argv;  // what ran, for messages
  int exitCode = -1;              // -1 when killed by a signal
  int signal = 0;                 // the signal that ended it, if any
  bool timedOut = false;          // killed because it ran past the deadline
  std::string out;
  std::string err;
};

struct RunOptions {
  std::map<std::string, std::string> env;  // added to (or replacing in) the parent's environment
  std::vector<std::string> unsetEnv;       // removed from the environment
  std::string input;                       // written to the child's stdin, then closed
  int timeoutMs = 60000;
  // Process only: the child's stdout and stderr go to this file instead of a pipe (a long-lived
  // child that logs a lot never waits for the parent to read), and output() reads it back.
  std::string outputPath;
  // The child is killed (SIGKILL) when the parent dies, even by SIGKILL (PR_SET_PDEATHSIG).
  bool dieWithParent = false;
};

RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// A child left running (a `kith serve`), killed with SIGKILL by the destructor if still alive.
class Process {
public:
  Process(const std::vector<std::string>& argv, const RunOptions& options = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  int pid() const { return pid_; }
  // Sends `sig`, waits for exit up to timeoutMs; returns the exit code (-1 on signal or time-out).
  int stop(int sig, int timeoutMs = 10000);
  // The exit code once the child has exited (-1 for a signal), nullopt while it runs. Never blocks.
  std::optional<int> tryWait();
  // The signal that ended the child (0 when it exited, or while it runs), once tryWait() or
  // stop() has seen it end.
  int termSignal() const;
  // User + system CPU seconds the child used, once tryWait() or stop() has seen it exit.
  double cpuSeconds() const { return cpuSeconds_; }
  // Waits until `needle` appears in the child's stderr (or stdout); false on time-out or exit.
  bool waitForOutput(const std::string& needle, int timeoutMs = 20000);
  std::string output();  // everything read so far from stdout and stderr

private:
  void pump(int timeoutMs);
  bool reap(int options);
  int exitCode() const;
  int pid_ = -1;
  int outFd_ = -1;
  std::string outputPath_;
  std::string buffer_;
  bool exited_ = false;
  int status_ = 0;
  double cpuSeconds_ = 0;
};

}  // namespace kith::test
