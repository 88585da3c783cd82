#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "tests/support/temp-dir.h"

extern char** environ;

namespace kith::test {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> buildEnv(const RunOptions& options) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& name : options.unsetEnv) env.erase(name);
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// Forks and execs; the child's stdout and stderr go to outFd/errFd (may be the same pipe).
int spawn(const std::vector<std::string>& argv, const RunOptions& options, int inFd, int outFd, int errFd) {
  std::vector<std::string> envStrings = buildEnv(options);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : envStrings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (options.dieWithParent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the parent died before the line above
    }
    setpgid(0, 0);
    dup2(inFd, 0);
    dup2(outFd, 1);
    dup2(errFd, 2);
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, const RunOptions& options) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  int pid = spawn(argv, options, in[0], out[1], err[1]);
  RunResult result;
  result.argv = argv;
  close(in[0]);
  close(out[1]);
  close(err[1]);
  fcntl(in[1], F_SETFL, O_NONBLOCK);

  size_t written = 0;
  bool inOpen = true;
  if (options.input.empty()) {
    close(in[1]);
    inOpen = false;
  }
  bool outOpen = true, errOpen = true;
  auto deadline = Clock::now() + std::chrono::milliseconds(options.timeoutMs);
  signal(SIGPIPE, SIG_IGN);
  while (outOpen || errOpen) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timedOut = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    pollfd fds[3];
    int n = 0;
    int outIdx = -1, errIdx = -1, inIdx = -1;
    if (outOpen) {
      outIdx = n;
      fds[n++] = {out[0], POLLIN, 0};
    }
    if (errOpen) {
      errIdx = n;
      fds[n++] = {err[0], POLLIN, 0};
    }
    if (inOpen) {
      inIdx = n;
      fds[n++] = {in[1], POLLOUT, 0};
    }
    if (poll(fds, n, static_cast<int>(left.count())) < 0) continue;
    char buf[65536];
    if (outIdx >= 0 && fds[outIdx].revents != 0) {
      ssize_t r = read(out[0], buf, sizeof buf);
      if (r <= 0)
        outOpen = false;
      else
        result.out.append(buf, static_cast<size_t>(r));
    }
    if (errIdx >= 0 && fds[errIdx].revents != 0) {
      ssize_t r = read(err[0], buf, sizeof buf);
      if (r <= 0)
        errOpen = false;
      else
        result.err.append(buf, static_cast<size_t>(r));
    }
    if (inIdx >= 0 && fds[inIdx].revents != 0) {
      ssize_t w = write(in[1], options.input.data() + written, options.input.size() - written);
      if (w <= 0) {
        close(in[1]);
        inOpen = false;
      } else {
        written += static_cast<size_t>(w);
        if (written == options.input.size()) {
          close(in[1]);
          inOpen = false;
        }
      }
    }
  }
  if (inOpen) close(in[1]);
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    result.exitCode = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

Process::Process(const std::vector<std::string>& argv, const RunOptions& options) : outputPath_(options.outputPath) {
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (!outputPath_.empty()) {
    int file = open(outputPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (file < 0) throw std::runtime_error("cannot create " + outputPath_);
    pid_ = spawn(argv, options, devnull, file, file);
    close(devnull);
    close(file);
    return;
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = spawn(argv, options, devnull, out[1], out[1]);
  close(devnull);
  close(out[1]);
  outFd_ = out[0];
  fcntl(outFd_, F_SETFL, O_NONBLOCK);
}

Process::~Process() {
  if (!exited_ && pid_ > 0) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    reap(0);
  }
  if (outFd_ >= 0) close(outFd_);
}

void Process::pump(int timeoutMs) {
  if (!outputPath_.empty()) {
    // The child writes to a file: there is nothing to drain, only something to read back.
    if (timeoutMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeoutMs));
    buffer_ = readFile(outputPath_);
    return;
  }
  if (outFd_ < 0) return;
  pollfd fd{outFd_, POLLIN, 0};
  if (poll(&fd, 1, timeoutMs) <= 0) return;
  char buf[65536];
  for (;;) {
    ssize_t r = read(outFd_, buf, sizeof buf);
    if (r > 0) {
      buffer_.append(buf, static_cast<size_t>(r));
      continue;
    }
    if (r == 0) {
      close(outFd_);
      outFd_ = -1;
    }
    break;
  }
}

bool Process::waitForOutput(const std::string& needle, int timeoutMs) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  pump(0);
  while (buffer_.find(needle) == std::string::npos) {
    if (Clock::now() >= deadline) return false;
    if (outputPath_.empty() ? outFd_ < 0 : tryWait().has_value()) return false;
    pump(outputPath_.empty() ? 50 : 2);
  }
  return true;
}

std::string Process::output() {
  pump(0);
  return buffer_;
}

// Collects the child's exit status (and CPU time) if it has exited; `options` as for wait4.
bool Process::reap(int options) {
  if (exited_) return true;
  rusage usage{};
  if (wait4(pid_, &status_, options, &usage) != pid_) return false;
  exited_ = true;
  cpuSeconds_ = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  return true;
}

int Process::exitCode() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }

int Process::termSignal() const { return exited_ && WIFSIGNALED(status_) ? WTERMSIG(status_) : 0; }

std::optional<int> Process::tryWait() {
  if (!reap(WNOHANG)) return std::nullopt;
  return exitCode();
}

int Process::stop(int sig, int timeoutMs) {
  if (exited_) return exitCode();
  kill(pid_, sig);
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  while (Clock::now() < deadline) {
    pump(20);
    if (reap(WNOHANG)) {
      pump(0);
      return exitCode();
    }
  }
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  reap(0);
  return -1;
}

}  // namespace kith::test
