// Learning of another process's writes without polling: the file watch (node/uv/uv-file-watch.h)
// on its own, and a running Node that passes on a post made by another process (a forked child
// that opens the store itself) long before its safety poll would have looked.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <catch2/catch.hpp>

#include "node/uv/uv-file-watch.h"
#include "tests/node/node-fixture.h"

namespace kith::node::test {
namespace {

using protocol::Role;

// Well under STORE_SAFETY_POLL_MS: a node that waited for its safety poll misses it.
constexpr kj::Duration TOLD_DEADLINE = 10 * kj::SECONDS;
static_assert(10 * 1000 < STORE_SAFETY_POLL_MS / 2, "the deadline must be well under the safety poll");
// How long the loop runs to show that no further wake-up comes (never to wait for a result).
constexpr kj::Duration QUIET_PERIOD = 200 * kj::MILLISECONDS;

// Runs `child` in a forked process (which must end with _exit) and waits for it; true when it
// exited with 0.
template <typename F>
bool inChildProcess(F child) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 1;
    try {
      code = child();
    } catch (...) { code = 2; }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Appends `times` lines to `path`, each by its own write(2), from another process.
bool writeFromChild(const std::string& path, int times) {
  return inChildProcess([&]() {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
    if (fd < 0) return 3;
    for (int i = 0; i < times; ++i) {
      if (::write(fd, "line\n", 5) != 5) return 4;
    }
    ::close(fd);
    return 0;
  });
}

}  // namespace

TEST_CASE("file watch: another process's write wakes it, many writes wake it once, none is lost", "[node][watch]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  TempDir dir;
  std::string path = dir.path() + "/watched";
  { std::ofstream(path) << "start\n"; }
  UvFileWatch watch(io.getPort(), path);

  // A caller waiting: one write by another process wakes it.
  auto first = watch.changed();
  CHECK_FALSE(first.poll(ws));
  REQUIRE(writeFromChild(path, 1));
  waitWithin(io, kj::mv(first));

  // Nobody waiting: many writes are kept as one change, and the next call returns at once.
  uint64_t before = watch.events();
  REQUIRE(writeFromChild(path, 50));
  REQUIRE(waitFor(io, [&] { return watch.events() > before; }));
  runFor(io, QUIET_PERIOD);  // every event of the child's writes is read by now
  auto coalesced = watch.changed();
  CHECK(coalesced.poll(ws));
  coalesced.wait(ws);
  auto quiet = watch.changed();
  runFor(io, QUIET_PERIOD);
  CHECK_FALSE(quiet.poll(ws));  // the 50 writes gave one wake-up, not more

  // The pending call is woken by the next write.
  REQUIRE(writeFromChild(path, 1));
  waitWithin(io, kj::mv(quiet));

  // A write between two calls (after one resolved, before the next is made) is not lost.
  before = watch.events();
  REQUIRE(writeFromChild(path, 1));
  REQUIRE(waitFor(io, [&] { return watch.events() > before; }));
  auto next = watch.changed();
  CHECK(next.poll(ws));
  next.wait(ws);

  // A caller that went away does not swallow the next change either.
  {
    auto dropped = watch.changed();
    CHECK_FALSE(dropped.poll(ws));
  }
  before = watch.events();
  REQUIRE(writeFromChild(path, 1));
  REQUIRE(waitFor(io, [&] { return watch.events() > before; }));
  auto afterDrop = watch.changed();
  CHECK(afterDrop.poll(ws));
}

TEST_CASE("watch: a running node passes on a post by another process without waiting for its safety poll",
          "[node][watch]") {
  UvIoContext io;
  TestNode a(io, "owner");
  TestNode b(io, "follower");
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "posted elsewhere");
  store::addMember(*a.store, ringA, j, b.key(), Role::SUBSCRIBER);
  a.post(j, "before");
  a.start();
  b.follow(j, a.key());
  b.trusted.push_back(a.key());
  b.dial(a);
  b.start();
  REQUIRE(waitFor(io, [&] { return b.heads(j) == a.heads(j); }));

  // `kith post` in another process: it opens the store itself (never the parent's Store) and
  // commits one post. The node is told by nobody but the store's data file.
  for (int round = 0; round < 3; ++round) {
    uint64_t headBefore = a.headOf(j, a.key());
    std::string text = "posted by another process, round " + std::to_string(round);
    std::string home = a.dir.path();
    REQUIRE(inChildProcess([&]() {
      auto store = store::Store::open(home);
      store::Keyring ring{a.identity, a.storageKey.view()};
      store::post(*store, ring, j, protocol::Body{protocol::Kind::UPDATE, text, {}});
      return 0;
    }));
    INFO("round " << round);
    REQUIRE(a.headOf(j, a.key()) == headBefore + 1);  // committed and visible here
    CHECK(waitFor(
        io, [&] { return b.headOf(j, a.key()) == headBefore + 1; }, TOLD_DEADLINE));
  }
  CHECK(digest(*b.store, j) == digest(*a.store, j));
}

}  // namespace kith::node::test
