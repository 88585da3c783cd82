// A thin RAII layer over LMDB: the environment, move-only read and write transactions, and named
// tables of byte keys and values. Every LMDB return code is turned into an exception here, once,
// with mdb_strerror's text and what we were doing.
//
// Threading: an Env may be shared by threads; a transaction belongs to the thread that began it.
// Several processes may open the same directory (`kith post` beside `kith serve`): LMDB's lock
// file serialises their writers.
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

#include "crypto/bytes.h"
#include "crypto/error.h"

namespace kith::store {

// The map filled up: grow it and run the transaction again.
class MapFullError : public Error {
public:
  MapFullError() : Error(ErrorKind::IO, "the store's map is full") {}
};

// Throws kith::Error (or MapFullError) for a non-zero LMDB return code.
void check(int rc, const char* what);

class Env {
public:
  // Opens (creating if needed) the LMDB environment in directory `path`.
  Env(const std::string& path, size_t mapSizeBytes, unsigned tablesMax);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  size_t mapSizeBytes() const;
  void setMapSize(size_t bytes);
  // The id of the last committed write transaction, by any process: a cheap change detector.
  size_t lastTxnId() const;

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

  // A view into the map, valid until `txn` ends.
  std::optional<ByteView> get(const Txn& txn, ByteView key) const;
  void put(WriteTxn& txn, ByteView key, ByteView value);
  // Returns false when the key was absent.
  bool del(WriteTxn& txn, ByteView key);
  // Calls fn(key, value) for each key starting with `prefix`, from `from` (a key >= prefix) on,
  // in key order, until fn returns false. Views are valid until `txn` ends.
  void scan(const Txn& txn, ByteView prefix, ByteView from,
            const std::function<bool(ByteView key, ByteView value)>& fn) const;
  void scan(const Txn& txn, ByteView prefix,
            const std::function<bool(ByteView key, ByteView value)>& fn) const {
    scan(txn, prefix, prefix, fn);
  }
  // The last entry whose key starts with `prefix`, if any.
  std::optional<std::pair<ByteView, ByteView>> last(const Txn& txn, ByteView prefix) const;
  size_t count(const Txn& txn) const;

private:
  MDB_dbi dbi_ = 0;
};

}  // namespace kith::store
