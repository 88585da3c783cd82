// A running node survives its own errors: when its store cannot be read for a while, the store
// watch, the journal rescans and the live subscriptions log the failure, back off and go on, and
// posts made after the store recovers still reach a connected follower. The failure is real:
// another process holds every one of LMDB's reader slots, so every read transaction is refused.
#include <catch2/catch.hpp>

#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <vector>

#include "store/limits.h"
#include "store/lmdb.h"
#include "tests/node/node-fixture.h"

namespace kith::node::test {
namespace {

// A process that takes every free reader slot of the store in `dir` and holds them until its
// pipe is closed. Killed (and reaped) by the destructor if still there.
class SlotHog {
public:
  explicit SlotHog(const std::string& dir) {
    int ready[2], release[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(release) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      // The environment outlives the transactions: closing it would free their slots.
      std::optional<store::Env> env;
      std::vector<store::ReadTxn> held;
      try {
        env.emplace(dir, store::MAP_BYTES_INITIAL, store::TABLES_MAX, false);
        for (;;) held.emplace_back(*env);  // until LMDB has no slot left
      } catch (const Error&) {}
      char n = static_cast<char>(held.size() > 0 ? 1 : 0);
      (void)!::write(ready[1], &n, 1);
      char buf;
      (void)!::read(release[0], &buf, 1);  // returns when the parent closes its end
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    release_ = release[1];
    char n = 0;
    REQUIRE(::read(ready[0], &n, 1) == 1);
    ::close(ready[0]);
    REQUIRE(n == 1);
  }
  ~SlotHog() { release(); }

  void release() {
    if (pid_ <= 0) return;
    ::close(release_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

private:
  int pid_ = -1;
  int release_ = -1;
};

}  // namespace

TEST_CASE("a node whose store failed for a while still sends later posts to a connected follower",
          "[node][resilience]") {
  UvIoContext io;
  TestNode a(io, "a");
  TestNode b(io, "b");
  auto ringA = a.keyring();
  JournalId j = store::createJournal(*a.store, ringA, "Mum's journal");
  store::addMember(*a.store, ringA, j, b.key(), protocol::Role::SUBSCRIBER);
  a.start();
  b.follow(j, a.key());
  b.trusted.push_back(a.key());
  b.dial(a);
  b.start();
  REQUIRE(waitFor(io, [&] { return b.holds(j) && b.heads(j) == a.heads(j); }));

  {
    // Every read of A's store fails until the hog lets go: the store watch logs it.
    SlotHog hog(a.dir.path());
    // Wake the store watch now rather than at its safety poll (30 s, as long as the wait): the
    // hog changes nothing in the data file itself.
    REQUIRE(::utimes(a.store->dataFile().c_str(), nullptr) == 0);
    REQUIRE(waitFor(io, [&] { return a.sink->contains("watching the store failed"); }));
    hog.release();
  }

  // Posts after the store recovered, one by one, each while the session is up: they arrive by the
  // live path, which before needed the store watch that the first failure had stopped for good.
  for (int i = 0; i < 3; ++i) {
    auto later = a.post(j, "after the failure " + std::to_string(i));
    INFO("post " << i);
    REQUIRE(waitFor(io, [&] { return b.headOf(j, a.key()) == later.seq; }));
  }
  CHECK(a.node->sessionCount() == 1);
}

}  // namespace kith::node::test
