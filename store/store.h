// The journal store: every journal this node holds, its entries by (journal, author, seq), the
// per-author heads (the version vector), a timeline index, members and roles as the owner's
// control entries set them, epoch keys sealed at rest, and fork evidence.
//
// Appending verifies what one entry cannot show alone: the author's chain (seq = head + 1, prev =
// the id of the head) and the author's role. decodeEntry (protocol/) has already checked the
// encoding, the limits and the signature. Nothing is stored unencrypted that was encrypted: bodies
// stay as they came, and epoch keys are sealed under a key derived from the node's identity.
//
// Threading: one Store per process; its methods may be called from one thread at a time.
// Several processes may open the same store.
// Caveats:
// - append() of an identical entry is a no-op (DUPLICATE); a different entry at a stored
//   (author, seq) is refused as FORK and kept in the fork table as evidence.
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
#include "store/limits.h"

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

// What this node needs to take in epoch keys wrapped to it: its identity and the at-rest key.
struct Keyring {
  const crypto::Identity& identity;
  ByteView storageKey;  // 32 bytes, Identity::deriveKey("kithstor", 1)
};

struct Member {
  PublicKey key{};
  Role role = Role::SUBSCRIBER;
  bool active = true;        // false once removed
  uint32_t sinceEpoch = 0;   // the epoch in force when added
};

struct JournalInfo {
  JournalId id{};
  PublicKey owner{};
  uint32_t epoch = 0;          // the current epoch
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
  std::string message;                                           // when REJECTED
};

// A one-time invitation to a journal, kept only on the inviting node. The code's secret is never
// stored: `id` is BLAKE2b-256("kith/invite/v1", secret).
struct Invite {
  Key32 id{};
  JournalId journal{};
  Role role = Role::SUBSCRIBER;
  int64_t createdMs = 0;
  int64_t expiresMs = 0;
  bool used = false;
  PublicKey usedBy{};
};

enum class InviteStatus { OPEN, UNKNOWN, USED, EXPIRED };
const char* inviteStatusText(InviteStatus status);

// An entry the store holds but cannot return: its stored bytes fail to decode or verify, its index
// row points at nothing, or the row itself is damaged (then `id` is nullopt).
struct DamagedEntry {
  std::optional<EntryId> id;
  std::string reason;
};

// What a timeline read found besides the entries it returned (see Store::timeline).
struct TimelineReport {
  uint64_t rows = 0;       // timeline rows read: the entries returned plus those skipped
  uint64_t expected = 0;   // the journal record's entry count, read in the same transaction
  std::vector<DamagedEntry> skipped;
};

// What Store::checkIntegrity finds wrong: one value per problem, never an exception.
enum class ProblemKind {
  STORE_UNREADABLE,  // LMDB itself reports damage while walking a table
  RECORD_DAMAGED,    // a journal, member, head, epoch-key, fork or invite record does not decode
  ENTRY_DAMAGED,     // an entry's stored bytes fail to decode or verify, or sit at the wrong key
  CHAIN_BROKEN,      // an author's seqs are not 1..n, or a prev is not the previous entry's id
  INDEX_MISMATCH,    // the ids or timeline index disagrees with the entries
  HEAD_MISMATCH,     // a head is not its author's last entry
  COUNT_MISMATCH,    // the journal record's entry count or last time disagrees with its entries
};
const char* problemKindName(ProblemKind kind);  // "entry-damaged", ...

struct StoreProblem {
  ProblemKind kind = ProblemKind::STORE_UNREADABLE;
  std::optional<JournalId> journal;
  std::optional<EntryId> entry;
  std::string text;  // what is wrong, one line
  std::string hint;  // what to do about it
};

struct CheckOptions {
  std::optional<JournalId> journal;      // only this journal's rows (and the tables' shapes)
  std::optional<ByteView> storageKey;    // when given, every epoch key must open under it
};

struct CheckReport {
  uint64_t journals = 0;  // journal records walked
  uint64_t entries = 0;   // entries walked
  std::vector<StoreProblem> problems;
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
  std::vector<AppendOutcome> appendBatch(const std::vector<Entry>& entries,
                                         const Keyring* keyring = nullptr);

  // Builds and appends the next entry of `author` in one write transaction, so that concurrent
  // writers (two `kith post` at once) never race for the same seq. `make` gets the author's head
  // (nullopt before the first entry) and the journal's state (nullopt before the genesis) and
  // returns the signed entry; it may run more than once (when the map grows).
  using MakeEntry = std::function<Entry(const std::optional<Head>&, const std::optional<JournalInfo>&)>;
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
  std::vector<Entry> range(const JournalId& journal, const PublicKey& author, uint64_t fromSeq,
                           size_t limit) const;
  // Packed entries (signature || bytes) likewise, for serving peers without decoding.
  std::vector<Bytes> rangePacked(const JournalId& journal, const PublicKey& author, uint64_t fromSeq,
                                 size_t limit, size_t bytesMax) const;
  // Every entry of the journal by (timestamp, id), read in one transaction. With `report`, an
  // entry that fails to decode or verify (or that its row points past) is skipped and named there,
  // and the row count and the journal record's entry count are filled in for the caller to
  // compare; without it, such an entry throws Error(CORRUPT) naming it.
  std::vector<Entry> timeline(const JournalId& journal, TimelineReport* report = nullptr) const;

  std::vector<Member> members(const JournalId& journal) const;
  std::optional<Member> member(const JournalId& journal, const PublicKey& key) const;
  // Fork evidence: the refused second entries, packed.
  std::vector<Bytes> forks(const JournalId& journal) const;

  // Epoch keys this node holds, sealed at rest under keyring.storageKey.
  void putEpochKey(const JournalId& journal, uint32_t epoch, ByteView key, ByteView storageKey);
  std::optional<crypto::SecretBuffer> epochKey(const JournalId& journal, uint32_t epoch,
                                               ByteView storageKey) const;

  // Invitations (local to this node, never replicated).
  void putInvite(const Invite& invite);
  std::vector<Invite> invites() const;
  // Removes an invitation; false when there was none with that id.
  bool cancelInvite(const Key32& id);
  // Looks up the invitation with this id; OPEN only when unused and not expired at `nowMs`.
  std::pair<InviteStatus, std::optional<Invite>> checkInvite(const Key32& id, int64_t nowMs) const;
  void markInviteUsed(const Key32& id, const PublicKey& by);
  bool hasOpenInvites(int64_t nowMs) const;

  // Walks every table in one read transaction: each entry decodes and verifies, each author's
  // chain runs 1..n with prev = the previous id, the ids, heads and timeline indexes match the
  // entries exactly, each journal record's counts match its entries, and the members, epoch keys,
  // forks and invites decode. Returns the problems found; LMDB's own errors become problems too.
  // Caveat: a page damaged so that LMDB itself faults still crashes the process (the CLI runs
  // this in a child process for that reason).
  CheckReport checkIntegrity(const CheckOptions& options = {}) const;

  // The last committed write transaction's id (any process): changes whenever anything is written.
  size_t changeCounter() const;
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
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kith::store
