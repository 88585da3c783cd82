// Runs a real program (the `kith` binary) in tests: arguments, extra environment, stdin, captured
// stdout and stderr, and a deadline after which the child is killed (a hang fails the test).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace kith::test {

struct RunResult {
  int exitCode = -1;      // -1 when killed by a signal
  int signal = 0;         // the signal that ended it, if any
  bool timedOut = false;  // killed because it ran past the deadline
  std::string out;
  std::string err;
};

struct RunOptions {
  std::map<std::string, std::string> env;  // added to (or replacing in) the parent's environment
  std::vector<std::string> unsetEnv;       // removed from the environment
  std::string input;                       // written to the child's stdin, then closed
  int timeoutMs = 60000;
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
  // Waits until `needle` appears in the child's stderr (or stdout); false on time-out or exit.
  bool waitForOutput(const std::string& needle, int timeoutMs = 20000);
  std::string output();  // everything read so far from stdout and stderr

private:
  void pump(int timeoutMs);
  int pid_ = -1;
  int outFd_ = -1;
  std::string buffer_;
  bool exited_ = false;
  int status_ = 0;
};

}  // namespace kith::test
