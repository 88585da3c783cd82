// Two processes writing one store at once: appendNext's one write transaction per post means their
// chains never fork, and both grow the map while the other writes.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "store/lmdb.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

// Waits for (or, when the test failed first, kills and reaps) a forked child.
struct Child {
  pid_t pid = -1;
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  int wait() {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    pid = -1;
    return status;
  }
};

TEST_CASE("two processes posting to one store at once never fork a chain", "[store]") {
  TempDir dir;
  Person owner("owner");
  Keyring kr = owner.keyring();
  // A small map, so that both processes grow it while the other writes.
  const StoreOptions options{size_t{1} << 20, size_t{64} << 20};
  constexpr int POSTS = 120;
  const std::string filler(4000, '.');
  JournalId j;
  {
    auto store = Store::open(dir.path(), options);
    j = createJournal(*store, kr, "shared");
  }  // No environment is open across fork() (LMDB forbids using one in the child).

  int ready[2], go[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(go) == 0);
  std::cout.flush();
  Child child;
  child.pid = ::fork();
  REQUIRE(child.pid >= 0);
  if (child.pid == 0) {
    // The child: no Catch macros, and _exit so that nothing of the parent's runs twice.
    int rc = 1;
    try {
      auto store = Store::open(dir.path(), options);
      char c = 'r';
      if (::write(ready[1], &c, 1) == 1 && ::read(go[0], &c, 1) == 1) {
        for (int i = 0; i < POSTS; ++i)
          post(*store, kr, j, Body{Kind::UPDATE, "child " + std::to_string(i) + filler, {}});
        rc = 0;
      }
    } catch (const std::exception& e) { std::fprintf(stderr, "child: %s\n", e.what()); }
    ::_exit(rc);
  }
  {
    auto store = Store::open(dir.path(), options);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    REQUIRE(::write(go[1], &c, 1) == 1);
    for (int i = 0; i < POSTS; ++i) post(*store, kr, j, Body{Kind::UPDATE, "parent " + std::to_string(i) + filler, {}});
  }
  int status = child.wait();
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  auto store = Store::open(dir.path(), options);
  CHECK(store->mapBytes() > options.mapBytesInitial);
  CHECK(store->forks(j).empty());
  CHECK(store->journal(j)->entryCount == 1 + 2 * POSTS);
  CHECK(store->head(j, owner.key())->seq == 1 + 2 * POSTS);
  auto chain = store->range(j, owner.key(), 1, RANGE_LIMIT_MAX);
  REQUIRE(chain.size() == 1 + 2 * POSTS);
  for (size_t i = 0; i < chain.size(); ++i) {
    CHECK(chain[i].seq == i + 1);
    if (i > 0) CHECK(chain[i].prev == chain[i - 1].id);
  }
  // Every post is there once, and each process's posts are in the chain in the order it made them.
  Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));
  int parentNext = 0, childNext = 0, switches = 0;
  std::string lastWriter;
  for (size_t i = 1; i < chain.size(); ++i) {
    auto body = protocol::openBody(chain[i], key);
    REQUIRE(body.has_value());
    std::string writer = body->text.substr(0, body->text.find(' '));
    int n = std::stoi(body->text.substr(writer.size() + 1));
    if (writer == "parent") {
      CHECK(n == parentNext++);
    } else {
      CHECK(writer == "child");
      CHECK(n == childNext++);
    }
    if (writer != lastWriter && !lastWriter.empty()) switches++;
    lastWriter = writer;
  }
  CHECK(parentNext == POSTS);
  CHECK(childNext == POSTS);
  WARN("the two writers took turns " << switches << " times");
}

}  // namespace
