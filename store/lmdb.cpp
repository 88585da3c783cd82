#include "store/lmdb.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace kith::store {
namespace {

MDB_val val(ByteView b) { return {b.size(), const_cast<uint8_t*>(b.data())}; }
ByteView view(const MDB_val& v) { return {static_cast<const uint8_t*>(v.mv_data), v.mv_size}; }

bool hasPrefix(ByteView key, ByteView prefix) {
  // An empty span's data() may be null, and memcmp with a null pointer is undefined even for 0 bytes.
  if (prefix.empty()) return true;
  return key.size() >= prefix.size() && std::memcmp(key.data(), prefix.data(), prefix.size()) == 0;
}

// Transactions open in this process (see openTxnCount). Process-wide on purpose: the signal handler
// that reads it has no other way to reach the stores.
std::atomic<int> openTxns{0};
static_assert(std::atomic<int>::is_always_lock_free);

// Counts a transaction from before mdb_txn_begin (which already reads the map) until it is kept;
// a constructor that throws releases the count again.
class TxnCounting {
public:
  TxnCounting() noexcept { openTxns.fetch_add(1); }
  ~TxnCounting() {
    if (!kept_) openTxns.fetch_sub(1);
  }
  void keep() noexcept { kept_ = true; }

private:
  bool kept_ = false;
};

// LMDB's own assertions fail on some damaged pages: it calls this, then prints "mdb.c:NNNN:
// Assertion ..." to stderr and aborts. Aborting here already keeps that line off stderr; the
// CLI's crash guard turns the abort into kith's one line (and `kith check` names the signal).
void quietAssert(MDB_env*, const char*) { std::abort(); }

}  // namespace

int openTxnCount() noexcept { return openTxns.load(); }

void check(int rc, const char* what) {
  if (rc == MDB_SUCCESS) return;
  if (rc == MDB_MAP_FULL) throw MapFullError();
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
      throw Error(ErrorKind::CORRUPT, "the store is damaged (" + msg + ")", HINT_RESTORE_STORE);
    case EACCES:
    case EROFS:
      throw Error(ErrorKind::IO, msg, "check the home folder's permissions");
    case ENOSPC:
      throw Error(ErrorKind::IO, "the disk is full (" + msg + ")", "free some disk space and try again");
    case EIO:
      // LMDB reports a short write as EIO: on a full disk that is what a commit meets. Nothing of
      // the failed transaction was kept.
      throw Error(ErrorKind::IO, "the disk is full or failing (" + msg + "); nothing of this change was saved",
                  "free some disk space and try again; if there is room, run 'kith check'");
    default:
      throw Error(ErrorKind::IO, msg);
  }
}

namespace {

// Held (flock LOCK_EX) while this process opens the environment; released by close, or by the
// kernel when the process dies.
class OpenLock {
public:
  OpenLock(const std::string& dir, bool create) {
    std::string path = dir + "/open.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      if (errno == ENOENT && !create) {
        throw Error(ErrorKind::CORRUPT, "the store is missing (there is no folder " + dir + ")", HINT_RESTORE_STORE);
      }
      check(errno, ("opening " + path).c_str());
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int err = errno;
        ::close(fd_);
        check(err, ("locking " + path).c_str());
      }
    }
  }
  ~OpenLock() { ::close(fd_); }
  OpenLock(const OpenLock&) = delete;
  OpenLock& operator=(const OpenLock&) = delete;

private:
  int fd_ = -1;
};

// LMDB's lock file for its default 126 readers: (126 - 1) reader slots of 64 bytes after a
// 192-byte header, which is what LMDB 0.9 itself sizes it to (tests/store checks a new one).
constexpr off_t LOCK_FILE_BYTES = 8192;

// LMDB sizes its lock file with ftruncate and writes it through a shared memory map: on a full
// disk the first write to a page never allocated kills the process with SIGBUS. Allocating the
// pages first turns that into ENOSPC here, with a clear error. fallocate never changes bytes
// already there (other processes may be using the file).
void allocateLockFile(const std::string& dir) {
  std::string path = dir + "/lock.mdb";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) check(errno, ("opening " + path).c_str());
  struct stat st;
  int rc = ::fstat(fd, &st) == 0 ? 0 : errno;
  if (rc == 0 && ::fallocate(fd, 0, 0, std::max<off_t>(st.st_size, LOCK_FILE_BYTES)) != 0) rc = errno;
  ::close(fd);
  if (rc == ENOSPC) {
    throw Error(ErrorKind::IO, "the disk is full (the store's lock file " + path + " cannot grow)",
                "free some disk space and try again");
  }
  if (rc != 0 && rc != EOPNOTSUPP) check(rc, ("allocating " + path).c_str());
}

// The data file, looked at before LMDB opens it: LMDB takes a missing or empty one for a new store.
void checkDataFile(const std::string& dir, bool create) {
  std::string data = dir + "/data.mdb";
  struct stat st;
  if (::stat(data.c_str(), &st) != 0) {
    if (errno != ENOENT) check(errno, ("reading " + data).c_str());
    if (!create) throw Error(ErrorKind::CORRUPT, "the store is missing (there is no " + data + ")", HINT_RESTORE_STORE);
    return;
  }
  if (!S_ISREG(st.st_mode))
    throw Error(ErrorKind::CORRUPT, "the store is damaged (" + data + " is not a file)", HINT_RESTORE_STORE);
  if (st.st_size == 0)
    throw Error(ErrorKind::CORRUPT, "the store is damaged (" + data + " is empty)", HINT_RESTORE_STORE);
}

}  // namespace

Env::Env(const std::string& path, size_t mapSizeBytes, unsigned tablesMax, bool create) {
  OpenLock lock(path, create);
  checkDataFile(path, create);
  allocateLockFile(path);
  check(mdb_env_create(&env_), "creating the LMDB environment");
  try {
    check(mdb_env_set_assert(env_, quietAssert), "setting the store's assertion handler");
    check(mdb_env_set_maxdbs(env_, tablesMax), "setting the table count");
    check(mdb_env_set_mapsize(env_, mapSizeBytes), "setting the map size");
    // Readers are per transaction object, not per thread: read transactions in the node may be
    // created and finished on whichever thread runs the loop.
    check(mdb_env_open(env_, path.c_str(), MDB_NOTLS, 0600), "opening the store");
    checkFileSize();
    reclaimStaleReaders();
  } catch (...) {
    mdb_env_close(env_);
    throw;
  }
}

Env::~Env() { mdb_env_close(env_); }

void Env::checkFileSize() const {
  // LMDB trusts the data file to hold every page its header counts; a shorter file (a partial copy,
  // a disk that filled up during a restore) makes the first read past its end fault with SIGBUS.
  // Committed pages are written before the header that counts them, so a healthy file is never short.
  MDB_envinfo info;
  MDB_stat st;
  mdb_filehandle_t fd;
  check(mdb_env_info(env_, &info), "reading the store's state");
  check(mdb_env_stat(env_, &st), "reading the store's state");
  check(mdb_env_get_fd(env_, &fd), "reading the store's state");
  struct stat file;
  if (::fstat(fd, &file) != 0)
    throw Error(ErrorKind::IO, std::string("reading the store's size: ") + std::strerror(errno));
  uint64_t needed = (uint64_t{info.me_last_pgno} + 1) * st.ms_psize;
  if (static_cast<uint64_t>(file.st_size) < needed) {
    throw Error(ErrorKind::CORRUPT,
                "the store is damaged (its data file is " + std::to_string(file.st_size) + " bytes, shorter than the " +
                    std::to_string(needed) + " its pages need)",
                HINT_RESTORE_STORE);
  }
}

size_t Env::mapSizeBytes() const {
  MDB_envinfo info;
  check(mdb_env_info(env_, &info), "reading the store's size");
  return info.me_mapsize;
}

void Env::setMapSize(size_t bytes) { check(mdb_env_set_mapsize(env_, bytes), "growing the store's map"); }

size_t Env::lastTxnId() const {
  // The snapshot a reader begun now gets, not mdb_env_info's newest meta page: a writer in another
  // process writes its meta page before it publishes the transaction to readers, so for a moment
  // mdb_env_info reports a transaction that a new reader cannot see yet. A node that woke its
  // subscriptions on that id would find nothing new and then miss the post until the next one.
  ReadTxn txn(*this);
  return mdb_txn_id(txn.raw());
}

size_t Env::newestWrittenTxnId() const {
  MDB_envinfo info;
  check(mdb_env_info(env_, &info), "reading the store's state");
  return info.me_last_txnid;
}

int Env::reclaimStaleReaders() const {
  int dead = 0;
  check(mdb_reader_check(env_, &dead), "freeing the store's stale reader slots");
  return dead;
}

Txn::Txn(const Env& env, unsigned flags) {
  TxnCounting counting;
  int rc = mdb_txn_begin(env.raw(), nullptr, flags, &txn_);
  if (rc == MDB_READERS_FULL && env.reclaimStaleReaders() > 0) { rc = mdb_txn_begin(env.raw(), nullptr, flags, &txn_); }
  if (rc == MDB_READERS_FULL) {
    throw Error(ErrorKind::IO, "the store has no free reader slot: too many kith commands hold it open at once",
                "wait for other kith commands to finish, then try again");
  }
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map: adopt its size and begin again.
    check(mdb_env_set_mapsize(env.raw(), 0), "adopting the store's new size");
    rc = mdb_txn_begin(env.raw(), nullptr, flags, &txn_);
  }
  check(rc, "beginning a store transaction");
  counting.keep();
}

Txn::Txn(Txn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)) {}

Txn::~Txn() { abort(); }

void Txn::abort() noexcept {
  if (txn_ != nullptr) {
    mdb_txn_abort(txn_);
    openTxns.fetch_sub(1);
  }
  txn_ = nullptr;
}

void WriteTxn::commit() {
  KITH_ASSERT(txn_ != nullptr);
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // mdb_txn_commit frees the transaction even when it fails.
  openTxns.fetch_sub(1);
  check(rc, "committing to the store");
}

Table::Table(WriteTxn& txn, const char* name) {
  check(mdb_dbi_open(txn.raw(), name, MDB_CREATE, &dbi_), "opening a store table");
}

std::optional<Table> Table::tryOpen(const Txn& txn, const char* name) {
  Table t;
  int rc = mdb_dbi_open(txn.raw(), name, 0, &t.dbi_);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "opening a store table");
  return t;
}

size_t namedTableCount(const Txn& txn) {
  MDB_dbi main;
  check(mdb_dbi_open(txn.raw(), nullptr, 0, &main), "opening the store's main table");
  MDB_stat st;
  check(mdb_stat(txn.raw(), main, &st), "counting the store's tables");
  return st.ms_entries;
}

std::optional<ByteView> Table::get(const Txn& txn, ByteView key) const {
  MDB_val k = val(key), v;
  int rc = mdb_get(txn.raw(), dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "reading from the store");
  return view(v);
}

void Table::put(WriteTxn& txn, ByteView key, ByteView value) {
  MDB_val k = val(key), v = val(value);
  check(mdb_put(txn.raw(), dbi_, &k, &v, 0), "writing to the store");
}

bool Table::del(WriteTxn& txn, ByteView key) {
  MDB_val k = val(key);
  int rc = mdb_del(txn.raw(), dbi_, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "deleting from the store");
  return true;
}

namespace {
struct Cursor {
  MDB_cursor* c = nullptr;
  Cursor(const Txn& txn, MDB_dbi dbi) { check(mdb_cursor_open(txn.raw(), dbi, &c), "opening a store cursor"); }
  ~Cursor() { mdb_cursor_close(c); }
};
}  // namespace

void Table::scan(const Txn& txn, ByteView prefix, ByteView from,
                 const std::function<bool(ByteView, ByteView)>& fn) const {
  Cursor cursor(txn, dbi_);
  MDB_val k = val(from), v;
  int rc = mdb_cursor_get(cursor.c, &k, &v, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    ByteView key = view(k);
    if (!hasPrefix(key, prefix)) return;
    if (!fn(key, view(v))) return;
    rc = mdb_cursor_get(cursor.c, &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) check(rc, "scanning the store");
}

std::optional<Bytes> Table::lastKey(const Txn& txn, ByteView prefix) const {
  KITH_ASSERT(!prefix.empty());
  // The first key after every key with this prefix is the prefix plus one (trailing 0xff bytes
  // carried); the last key with the prefix is just before it, or the table's last key.
  Bytes after(prefix.begin(), prefix.end());
  while (!after.empty() && after.back() == 0xff) after.pop_back();
  if (!after.empty()) ++after.back();
  Cursor cursor(txn, dbi_);
  MDB_val k = val(after), v;
  int rc = after.empty() ? MDB_NOTFOUND : mdb_cursor_get(cursor.c, &k, &v, MDB_SET_RANGE);
  if (rc == MDB_SUCCESS) {
    rc = mdb_cursor_get(cursor.c, &k, &v, MDB_PREV);
  } else if (rc == MDB_NOTFOUND) {
    rc = mdb_cursor_get(cursor.c, &k, &v, MDB_LAST);
  }
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "reading the store");
  ByteView key = view(k);
  if (!hasPrefix(key, prefix)) return std::nullopt;
  return Bytes(key.begin(), key.end());
}

}  // namespace kith::store
