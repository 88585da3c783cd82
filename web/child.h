// Running `kith` itself as a child process for the page's invite and accept: both may wait on the
// network (a relay, the inviting node) for many seconds, which must not hold the node's loop.
//
// Threading: run() is called on the loop thread; the child is started, read and waited for on a
// thread of its own, which hands the result back to the loop through a cross-thread promise.
// Caveats:
// - The child gets the arguments as given (no shell), the node's environment (KITH_PASSPHRASE
//   among it, when the node was started with one), stdin from /dev/null, and no other descriptor.
// - A child running past WEB_CHILD_MS_MAX is killed; so is one still running when the
//   ChildRunner goes.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <kj/async.h>

namespace kith::web {

struct ChildResult {
  int exitCode = -1;  // -1: killed or could not start
  std::string out;    // stdout, at most WEB_CHILD_OUTPUT_BYTES_MAX
  std::string err;    // stderr, likewise
  bool timedOut = false;
};

class ChildRunner {
public:
  ChildRunner();
  ~ChildRunner();
  ChildRunner(const ChildRunner&) = delete;
  ChildRunner& operator=(const ChildRunner&) = delete;

  // Runs argv[0] with argv; the promise resolves on the loop thread when it ended. Throws
  // Error(CONFLICT) while another child runs (WEB_CHILDREN_MAX).
  kj::Promise<ChildResult> run(std::vector<std::string> argv);
  bool busy() const;

private:
  struct Job;
  std::shared_ptr<Job> job_;
};

}  // namespace kith::web
