// A thin RAII layer over LMDB: the environment, move-only read and write transactions, and named
// tables of byte keys and values. Every LMDB return code is turned into an exception here, once,
// with mdb_strerror's text and what we were doing.
//
// Threading: an Env may be shared by threads; a transaction belongs to the thread that began it.
// Several processes may open the same directory (`kith post` beside `kith serve`): LMDB's lock
// file serialises their writers, and our own `open.lock` serialises their opening (see Env).
// Caveats:
// - A ByteView returned by get() or a cursor points into the memory map and is valid only until
//   the transaction that produced it ends (commit, abort or destruction). Copy what you keep.
// - A WriteTxn aborts on destruction unless commit() ran.
// - MDB_MAP_FULL surfaces as MapFullError: the caller (Store::write) grows the map and retries.
#pragma once
#include <lmdb.h>

#include <functional>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/error.h"

namespace kith::store {

// The map filled up: grow it and run the transaction again.
class MapFullError : public Error {
public:
  MapFullError() : Error(ErrorKind::IO, "the store's map is full") {}
};

// Throws kith::Error (or MapFullError) for a non-zero LMDB return code.
void check(int rc, const char* what);

// How many store transactions this process has open right now (begun, or beginning, and not yet
// committed or aborted). A lock-free atomic read, so a signal handler may call it: the CLI tells
// a fault inside LMDB on a damaged page (a transaction is open) from a bug of ours (none is).
int openTxnCount() noexcept;

class Env {
public:
  // Opens the LMDB environment in directory `path`, creating it when `create` is set. Without
  // `create`, a missing or empty data file is Error(CORRUPT), never a new empty store.
  //
  // Opening holds an exclusive flock on `path`/open.lock from before mdb_env_open until it has
  // returned. LMDB 0.9's first opener resets the lock file's last-commit number and sets it from
  // the data file only at the end of mdb_env_open; a process that died in between, with another
  // one already waiting for LMDB's lock, let the waiter write over the newest commit (an
  // acknowledged post lost). Under our lock, the next opener finds nobody holding LMDB's lock
  // file and initialises it again from the data file. Stale reader slots of dead processes are
  // reclaimed once the environment is open.
  Env(const std::string& path, size_t mapSizeBytes, unsigned tablesMax, bool create = true);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  size_t mapSizeBytes() const;
  void setMapSize(size_t bytes);
  // The id of the last committed write transaction, by any process: a cheap change detector.
  size_t lastTxnId() const;
  // The newest transaction written to the data file (its meta page), which a reader begun now may
  // not see yet for a moment: the writer publishes it to readers just after writing it.
  size_t newestWrittenTxnId() const;
  // Frees the reader slots of processes that died inside a read transaction (killed `kith read`):
  // such a slot pins old pages, so the file grows, and 126 of them refuse every reader. Returns
  // how many were freed. Cheap: run at open, periodically by `kith serve`, and on MDB_READERS_FULL.
  int reclaimStaleReaders() const;

private:
  // Throws Error(CORRUPT) when the data file is shorter than the pages LMDB would map from it.
  void checkFileSize() const;
  MDB_env* env_ = nullptr;
};

class Txn {
public:
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  ~Txn();

  MDB_txn* raw() const { return txn_; }
  void abort() noexcept;

protected:
  Txn(const Env& env, unsigned flags);
  MDB_txn* txn_ = nullptr;
};

class ReadTxn : public Txn {
public:
  explicit ReadTxn(const Env& env) : Txn(env, MDB_RDONLY) {}
};

class WriteTxn : public Txn {
public:
  explicit WriteTxn(const Env& env) : Txn(env, 0) {}
  void commit();
};

class Table {
public:
  Table() = default;
  // Opens or creates the named table inside `txn`.
  Table(WriteTxn& txn, const char* name);
  // LMDB's own list of free pages (FREE_DBI, read with scan only): the next write reads it, so
  // Store::checkIntegrity walks it to find a damaged page there before a write trips over it.
  static Table freePages() {
    Table t;
    t.dbi_ = 0;  // FREE_DBI in mdb.c
    return t;
  }
  // Opens the named table if it exists.
  static std::optional<Table> tryOpen(const Txn& txn, const char* name);

  // A view into the map, valid until `txn` ends.
  std::optional<ByteView> get(const Txn& txn, ByteView key) const;
  void put(WriteTxn& txn, ByteView key, ByteView value);
  // Returns false when the key was absent.
  bool del(WriteTxn& txn, ByteView key);
  // Calls fn(key, value) for each key starting with `prefix`, from `from` (a key >= prefix) on,
  // in key order, until fn returns false. Views are valid until `txn` ends.
  void scan(const Txn& txn, ByteView prefix, ByteView from,
            const std::function<bool(ByteView key, ByteView value)>& fn) const;
  void scan(const Txn& txn, ByteView prefix, const std::function<bool(ByteView key, ByteView value)>& fn) const {
    scan(txn, prefix, prefix, fn);
  }
  // The last key starting with `prefix` (non-empty), copied; nullopt when there is none.
  std::optional<Bytes> lastKey(const Txn& txn, ByteView prefix) const;

private:
  MDB_dbi dbi_ = 0;
};

// The number of named tables (and other keys) in the environment's main table: 0 for a new one.
size_t namedTableCount(const Txn& txn);

}  // namespace kith::store
