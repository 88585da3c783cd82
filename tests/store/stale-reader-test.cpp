// Reader slots of processes that die inside a read transaction (a `kith read` killed with
// SIGKILL or Ctrl-C while `kith serve` keeps the store open): LMDB keeps such a slot, which pins
// the pages of its snapshot (so the file grows) and, 126 of them, refuses every new reader.
// Opening the store and Store::reclaimStaleReaders (which `kith serve` runs periodically) free
// them. The readers here are real processes killed mid-transaction.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "crypto/keys.h"
#include "store/journal.h"
#include "store/limits.h"
#include "store/lmdb.h"
#include "store/store.h"
#include "tests/support/temp-dir.h"

namespace {

using namespace kith;
using namespace kith::store;
using test::TempDir;

constexpr int KILLED_READERS = 200;
constexpr int POSTS = 2000;

// Forks a process that opens the store at `dir`, begins a read transaction, says so on a pipe and
// waits; returns its pid once it is inside the transaction.
int startParkedReader(const std::string& dir) {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  int pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    try {
      Env env(dir, MAP_BYTES_INITIAL, TABLES_MAX, false);
      ReadTxn txn(env);
      char ok = 1;
      (void)!::write(ready[1], &ok, 1);
      for (;;) ::pause();
    } catch (...) { ::_exit(3); }
  }
  ::close(ready[1]);
  char ok = 0;
  ssize_t n = ::read(ready[0], &ok, 1);
  ::close(ready[0]);
  REQUIRE(n == 1);
  return pid;
}

void killReader(int pid) {
  REQUIRE(::kill(pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
}

uint64_t fileBytes(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_size);
}

// Posts `count` updates of about 1 KiB, one write transaction each (as `kith post` does).
void postMany(Store& store, const Keyring& keyring, const JournalId& journal, int count) {
  for (int i = 0; i < count; ++i) {
    store::post(store, keyring, journal, protocol::Body{protocol::Kind::UPDATE, std::string(1000, 'a' + i % 26), {}});
  }
}

}  // namespace

TEST_CASE("200 readers killed inside their transactions leave no slot behind and the file stays small",
          "[store][readers]") {
  TempDir dir;
  crypto::Identity me = crypto::Identity::generate();
  crypto::SecretBuffer storageKey = me.deriveKey("kithstor", 1);
  Keyring keyring{me, storageKey.view()};
  // The long-lived process (`kith serve`): the store stays open throughout.
  auto store = Store::open(dir.path());
  JournalId journal = createJournal(*store, keyring, "Mum's journey");

  // Each reader is killed while its snapshot is the oldest; posts between them make the pages it
  // pins differ. More dead readers than LMDB has slots (126): without reclaiming, the last ones
  // could not even begin.
  for (int i = 0; i < KILLED_READERS; ++i) {
    killReader(startParkedReader(dir.path()));
    if (i % 10 == 0) postMany(*store, keyring, journal, 1);
  }
  // Readers dead since the last open are freed by the long-lived store's periodic reclaim.
  store->reclaimStaleReaders();
  CHECK(store->reclaimStaleReaders() == 0);  // nothing left to free

  postMany(*store, keyring, journal, POSTS);
  uint64_t withDeadReaders = fileBytes(dir / "data.mdb");

  // The same work in a store no reader ever died in: the file is about the same size. (With the
  // dead readers' slots kept, pages freed after their snapshots could never be reused and the
  // file grew to about ten times this.)
  TempDir clean;
  auto reference = Store::open(clean.path());
  JournalId other = createJournal(*reference, keyring, "Mum's journey");
  postMany(*reference, keyring, other, KILLED_READERS / 10 + POSTS);
  uint64_t baseline = fileBytes(clean / "data.mdb");
  INFO("data.mdb: " << withDeadReaders << " bytes after killed readers, " << baseline << " without");
  CHECK(withDeadReaders <= baseline * 3 / 2);

  // Everything posted reads back.
  CHECK(store->journal(journal)->entryCount == 1 + KILLED_READERS / 10 + POSTS);
  CHECK(readJournal(*store, keyring, journal).size() == store->journal(journal)->entryCount);
}

TEST_CASE("opening the store frees the slots of readers that died, more of them than LMDB has slots",
          "[store][readers]") {
  TempDir dir;
  auto store = Store::open(dir.path());
  // 130 dead readers: more than LMDB's 126 slots. Each new process's open frees what the
  // previous ones left, so every parked reader finds a slot.
  for (int i = 0; i < 130; ++i) killReader(startParkedReader(dir.path()));
  // One more process opens the store (as the next `kith` command does) and exits: after it,
  // nothing is left to free.
  int pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      Store::open(dir.path(), StoreOptions{MAP_BYTES_INITIAL, MAP_BYTES_MAX, false});
      ::_exit(0);
    } catch (...) { ::_exit(3); }
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(store->reclaimStaleReaders() == 0);
  CHECK(store->journals().empty());
}

TEST_CASE("a new store's lock file is allocated, at LMDB's own size for its 126 readers", "[store][readers]") {
  TempDir dir;
  Env env(dir.path(), MAP_BYTES_INITIAL, TABLES_MAX, true);
  struct stat st;
  REQUIRE(::stat((dir / "lock.mdb").c_str(), &st) == 0);
  CHECK(st.st_size == 8192);
  CHECK(st.st_blocks * 512 >= st.st_size);  // not sparse: a full disk cannot fault on it later
  unsigned readers = 0;
  REQUIRE(mdb_env_get_maxreaders(env.raw(), &readers) == 0);
  CHECK(readers == 126);
}
