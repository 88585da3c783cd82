#include "web/child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "base/error.h"
#include "web/limits.h"

extern char** environ;

namespace kith::web {

struct ChildRunner::Job {
  std::thread thread;
  kj::Own<kj::CrossThreadPromiseFulfiller<ChildResult>> fulfiller;
  std::atomic<pid_t> pid{0};
  std::atomic<bool> done{false};
};

namespace {

// Starts argv with stdout and stderr on pipes; fills `result` as it goes. Runs on the job's thread.
void runChild(const std::vector<std::string>& argv, std::atomic<pid_t>& pidOut, ChildResult& result) {
  int outPipe[2], errPipe[2];
  if (::pipe2(outPipe, O_CLOEXEC) != 0) return;
  if (::pipe2(errPipe, O_CLOEXEC) != 0) {
    ::close(outPipe[0]);
    ::close(outPipe[1]);
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  // The node's own descriptors (sockets, the store) are all O_CLOEXEC: the child inherits none.
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  if (rc != 0) {
    ::close(outPipe[0]);
    ::close(errPipe[0]);
    result.err = "could not start " + argv[0];
    return;
  }
  pidOut = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(WEB_CHILD_MS_MAX);
  pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  int open = 2;
  char buf[4096];
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timedOut = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
        continue;
      }
      std::string& into = i == 0 ? result.out : result.err;
      if (into.size() < WEB_CHILD_OUTPUT_BYTES_MAX) {
        into.append(buf, std::min(static_cast<size_t>(got), WEB_CHILD_OUTPUT_BYTES_MAX - into.size()));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  pidOut = 0;
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

ChildRunner::ChildRunner() = default;

ChildRunner::~ChildRunner() {
  if (job_ && job_->thread.joinable()) {
    if (pid_t pid = job_->pid.load(); pid > 0) ::kill(pid, SIGKILL);
    job_->thread.join();
  }
}

bool ChildRunner::busy() const { return job_ && !job_->done.load(); }

kj::Promise<ChildResult> ChildRunner::run(std::vector<std::string> argv) {
  if (busy()) {
    throw Error(ErrorKind::CONFLICT, "another invite or join is still under way",
                "wait for it to finish, then try again");
  }
  if (job_ && job_->thread.joinable()) job_->thread.join();
  auto job = std::make_shared<Job>();
  auto paf = kj::newPromiseAndCrossThreadFulfiller<ChildResult>();
  job->fulfiller = kj::mv(paf.fulfiller);
  job->thread = std::thread([job = job.get(), argv = std::move(argv)]() {
    ChildResult result;
    runChild(argv, job->pid, result);
    job->done = true;
    job->fulfiller->fulfill(kj::mv(result));
  });
  job_ = job;
  return kj::mv(paf.promise);
}

}  // namespace kith::web
