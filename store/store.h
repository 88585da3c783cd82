// The journal store: every journal this node holds, its entries by (journal, author, seq), the
// per-author heads (the version vector), a timeline index, members and roles as the owner's
// control entries set them, epoch keys sealed at rest, and fork evidence.
//
// Appending verifies what one entry cannot show alone: the author's chain (seq = head + 1, prev =
// the id of the head) and the author's role. decodeEntry (protocol/) has already checked the
// encoding, the limits and the signature. Nothing is stored unencrypted that was encrypted: bodies
// stay as they came, and epoch keys are sealed under a key derived from the node's identity.
//
// Where each part lives: store.cpp (opening, reads), append.cpp (the chain, fork and role checks
// of append and appendNext), members.cpp, epoch-keys.cpp, invites.cpp, check.cpp (the integrity
// check), records.h (every table's byte layout), store-impl.h (the state they share).
//
// Threading: one Store per process; its methods may be called from one thread at a time.
// Several processes may open the same store.
// Caveats:
// - append() of an identical entry is a no-op (DUPLICATE); a different entry at a stored
//   (author, seq) is refused as FORK and kept in the fork table as evidence when its author is or
//   was a member and could have written it there: at most one per (author, seq) and
//   FORKS_PER_AUTHOR_MAX per author.
// - Appending may remove entries already stored: a removal drops the removed member's entries past
//   its cut-off, and an epoch key that arrives re-judges the entries stored without it (kind
//   against role) and drops the refused ones with their author's later entries
//   (AppendOutcome::dropped; specs/entry.md, "Removal and the cut-off", "Judging kinds").
// - Entries are returned as owned copies; nothing returned points into LMDB.
// - Errors: kith::Error(CORRUPT) for a damaged store, (IO) for a failing disk, EntryError for a
//   refused entry. A full map is grown and the transaction run again.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/entry.h"
#include "protocol/sync.h"
#include "store/check.h"
#include "store/epoch-keys.h"
#include "store/invites.h"
#include "store/limits.h"
#include "store/members.h"

namespace kith::store {

using protocol::Entry;
using protocol::EntryId;
using protocol::JournalId;
using protocol::PublicKey;
using protocol::Role;

struct StoreOptions {
  size_t mapBytesInitial = MAP_BYTES_INITIAL;
  size_t mapBytesMax = MAP_BYTES_MAX;
  // Create the store when the folder has none. Without it a missing or empty data file is damage
  // (Error(CORRUPT)), never silently a new empty store.
  bool create = true;
};

struct JournalInfo {
  JournalId id{};
  PublicKey owner{};
  uint32_t epoch = 0;  // the current epoch
  int64_t createdMs = 0;
  int64_t lastEntryMs = 0;
  uint64_t entryCount = 0;
};

using protocol::VersionVector;

struct Head {
  uint64_t seq = 0;
  EntryId id{};
};

enum class AppendStatus { ADDED, DUPLICATE, REJECTED };

struct AppendOutcome {
  AppendStatus status = AppendStatus::ADDED;
  protocol::Rejection reason = protocol::Rejection::MALFORMED;  // when REJECTED
  std::string message;                                          // when REJECTED
  // A FORK refused: whether the entry was kept in the fork table as evidence. It is not when the
  // author's fork evidence is at its limit (FORKS_PER_AUTHOR_MAX) or when evidence at this
  // (author, seq) is kept already; a node counts these and logs them per peer.
  bool evidenceKept = false;
  // Entries of others that taking this one in removed from the store: those past a removal's
  // cut-off, or those that the epoch key this entry brought showed to be refused (their
  // author's later entries go with them). The version vector goes down by as many.
  uint64_t dropped = 0;
};

// An entry the store holds but cannot return: its stored bytes fail to decode or verify, its index
// row points at nothing, or the row itself is damaged (then `id` is nullopt).
struct DamagedEntry {
  std::optional<EntryId> id;
  std::string reason;
};

// What a timeline read found besides the entries it returned (see Store::timeline).
struct TimelineReport {
  uint64_t rows = 0;      // timeline rows read: the entries returned plus those skipped
  uint64_t expected = 0;  // the journal record's entry count, read in the same transaction
  std::vector<DamagedEntry> skipped;
};

// What Store::appendNext's `make` sees: the journal as the write transaction that will append
// the entry holds it. Valid only during the call to `make`; what it returns is owned (or, for
// epochKey, lives until appendNext returns) and never points into LMDB.
class AppendView {
public:
  // The author's head (nullopt before the author's first entry).
  virtual const std::optional<Head>& head() const = 0;
  // Another author's head (a removal records the removed member's as its cut-off).
  virtual std::optional<Head> headOf(const PublicKey& author) const = 0;
  // The journal's state (nullopt before its genesis).
  virtual const std::optional<JournalInfo>& journal() const = 0;
  virtual std::optional<Member> member(const PublicKey& key) const = 0;
  virtual std::vector<Member> members() const = 0;
  // The key of `epoch` as this node holds it, unsealed at most once per appendNext and valid until
  // appendNext returns; nullptr when this node holds none. Throws Error(CORRUPT) when the stored
  // key does not open under the keyring's storage key. Requires appendNext's keyring.
  virtual const crypto::SecretBuffer* epochKey(uint32_t epoch) = 0;

protected:
  ~AppendView() = default;
};

// What `make` returns: the signed entry and, when it has a body, the plaintext it encrypted, so
// that the store checks the body's kind against the author's role (protocol/roles.h) without
// decrypting what was just encrypted. `body` must stay valid until appendNext returns.
struct MadeEntry {
  Entry entry;
  const protocol::Body* body = nullptr;
};

class Store {
public:
  // Opens or creates the store in directory `dir` (which must exist). Throws Error(CORRUPT) for a
  // store of a newer schema or not kith's.
  static std::unique_ptr<Store> open(const std::string& dir, StoreOptions options = {});
  ~Store();

  // Appends one entry; throws EntryError when it is refused (the store is unchanged, except that
  // a fork is recorded as evidence). Returns ADDED or DUPLICATE.
  AppendStatus append(const Entry& entry, const Keyring* keyring = nullptr);
  // Appends many in one write transaction, in order; a refused entry does not stop the others
  // (an entry that depends on a refused one is refused in turn). At most APPEND_BATCH_MAX.
  std::vector<AppendOutcome> appendBatch(const std::vector<Entry>& entries, const Keyring* keyring = nullptr);

  // Builds and appends the next entry of `author` in one write transaction, so that concurrent
  // writers (two `kith post` at once) never race for the same seq. `make` reads the journal
  // through the AppendView it is given (never through this Store's public calls, which would
  // open transactions of their own) and returns the signed entry; it may run more than once (when
  // the map grows). An exception from `make` aborts the transaction: nothing is written.
  using MakeEntry = std::function<MadeEntry(AppendView&)>;
  Entry appendNext(const JournalId& journal, const PublicKey& author, const MakeEntry& make,
                   const Keyring* keyring = nullptr);

  std::vector<JournalInfo> journals() const;
  std::optional<JournalInfo> journal(const JournalId& id) const;
  // Journals whose id starts with the hex prefix given (for ids typed by people).
  std::vector<JournalId> findJournals(std::string_view hexPrefix) const;

  VersionVector versionVector(const JournalId& journal) const;
  std::optional<Head> head(const JournalId& journal, const PublicKey& author) const;
  std::optional<Entry> entry(const JournalId& journal, const PublicKey& author, uint64_t seq) const;
  std::optional<Entry> entryById(const EntryId& id) const;
  // Entries whose id starts with the hex prefix (at most `limit`).
  std::vector<EntryId> findEntries(std::string_view hexPrefix, size_t limit) const;
  // The author's entries from `fromSeq` on, at most `limit` (<= RANGE_LIMIT_MAX) of them.
  std::vector<Entry> range(const JournalId& journal, const PublicKey& author, uint64_t fromSeq, size_t limit) const;
  // Packed entries (signature || bytes) likewise, for serving peers without decoding.
  std::vector<Bytes> rangePacked(const JournalId& journal, const PublicKey& author, uint64_t fromSeq, size_t limit,
                                 size_t bytesMax) const;
  // Every entry of the journal by (timestamp, id), read in one transaction. With `report`, an
  // entry that fails to decode or verify (or that its row points past) is skipped and named there,
  // and the row count and the journal record's entry count are filled in for the caller to
  // compare; without it, such an entry throws Error(CORRUPT) naming it.
  std::vector<Entry> timeline(const JournalId& journal, TimelineReport* report = nullptr) const;

  std::vector<Member> members(const JournalId& journal) const;
  std::optional<Member> member(const JournalId& journal, const PublicKey& key) const;
  // Fork evidence: the refused second entries, packed.
  std::vector<Bytes> forks(const JournalId& journal) const;

  // Epoch keys this node holds, sealed at rest under keyring.storageKey. A key this store did not
  // hold re-judges the journal's entries of that epoch, as a key wrapped to this node does on
  // append; returns how many entries that dropped.
  uint64_t putEpochKey(const JournalId& journal, uint32_t epoch, ByteView key, ByteView storageKey);
  std::optional<crypto::SecretBuffer> epochKey(const JournalId& journal, uint32_t epoch, ByteView storageKey) const;

  // Invitations (local to this node, never replicated; store/invites.h).
  void putInvite(const Invite& invite);
  std::vector<Invite> invites() const;
  // Removes an invitation; false when there was none with that id.
  bool cancelInvite(const Key32& id);
  // Looks up the invitation with this id; OPEN only when unused and not expired at `nowMs`.
  std::pair<InviteStatus, std::optional<Invite>> checkInvite(const Key32& id, int64_t nowMs) const;
  void markInviteUsed(const Key32& id, const PublicKey& by);
  bool hasOpenInvites(int64_t nowMs) const;
  // Short codes (store/invites.h): the invite with a short code in `slot` and its status at
  // `nowMs` (UNKNOWN when no invite holds the slot; an invite that is not OPEN keeps its slot
  // until cancelled, so that its friend hears why).
  std::pair<InviteStatus, std::optional<Invite>> checkShortInvite(uint8_t slot, int64_t nowMs) const;
  // Counts one short-code try against an OPEN invite before the password is tested, in one write
  // transaction; returns the tries now counted, or nullopt when the invite is no longer OPEN
  // (burnt by the tries before, used, gone): then nothing was counted.
  std::optional<uint8_t> countShortTry(const Key32& id, int64_t nowMs);
  // Takes back the try of a friend that proved the password.
  void forgiveShortTry(const Key32& id);
  // Redeems the invitation with this id for `peer`, in one write transaction: checks it is OPEN
  // at `nowMs`, appends the owner's ADD_MEMBER entry for `peer` with the invite's role (unless
  // `peer` is an active member already; `keyring` is the owner's) and marks the invite used by
  // `peer`. Returns the invite's status: when not OPEN nothing was written. Throws as addMember
  // (store/journal.h) does when the member cannot be added; then nothing was written either.
  Redemption redeemInvite(const Key32& id, const PublicKey& peer, int64_t nowMs, const Keyring& keyring);

  // Walks every table in one read transaction: each entry decodes and verifies, each author's
  // chain runs 1..n with prev = the previous id, the ids, heads and timeline indexes match the
  // entries exactly, each journal record's counts match its entries, and the members, epoch keys,
  // forks and invites decode. Returns the problems found; LMDB's own errors become problems too.
  // Caveat: a page damaged so that LMDB itself faults still crashes the process (the CLI runs
  // this in a child process for that reason).
  CheckReport checkIntegrity(const CheckOptions& options = {}) const;

  // The last committed write transaction's id (any process) that a reader can see: changes
  // whenever anything is written.
  size_t changeCounter() const;
  // The last write transaction written to the data file. Ahead of changeCounter() only for the
  // moment between another process writing its commit and publishing it to readers: a watch woken
  // by that write looks again shortly when the two differ.
  size_t writtenCounter() const;
  // The file every commit writes (LMDB's data.mdb, written with pwrite, not through a writable
  // map): a watch on it sees every process's commits.
  std::string dataFile() const;
  // Frees the reader slots of processes that died mid-read (Env::reclaimStaleReaders); returns how
  // many. Opening the store does it too; `kith serve` calls it periodically.
  int reclaimStaleReaders() const;
  size_t mapBytes() const;

  // Writes a compacted copy of the whole store (an LMDB data file) to `fd` at its current offset,
  // from one read transaction: consistent while other processes (`kith serve`) write. Large
  // stores are streamed, never held in memory. Throws Error(IO) when the write fails (a full
  // disk), Error(CORRUPT) when the store is damaged (LMDB refuses to compact a page leak).
  void copyCompactTo(int fd) const;

private:
  struct Impl;  // store/store-impl.h
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kith::store
