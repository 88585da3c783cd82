// Internal to store/: Store::Impl, the state the store's .cpp files share (the environment, its
// tables, the write loop) and the helpers each of them implements. Nothing outside store/
// includes this header.
//
// Threading: as Store. Every helper taking a Txn reads or writes inside that transaction only;
// views into LMDB never leave it.
#pragma once
#include <map>
#include <utility>

#include "store/lmdb.h"
#include "store/records.h"
#include "store/store.h"

namespace kith::store {

struct Store::Impl {
  Env env;
  StoreOptions options;
  std::string directory;  // where data.mdb and lock.mdb are
  Table meta, journals, entries, ids, heads, timeline, members, epochs, forks, invites;

  Impl(const std::string& dir, StoreOptions opts)
      : env(dir, opts.mapBytesInitial, TABLES_MAX, opts.create), options(opts), directory(dir) {}

  // Runs fn in a write transaction and commits, growing the map and running fn again when full.
  template <typename F>
  void write(F&& fn) {
    for (;;) {
      try {
        WriteTxn txn(env);
        fn(txn);
        txn.commit();
        return;
      } catch (const MapFullError&) { growMap(); }
    }
  }
  // Doubles the map up to options.mapBytesMax; throws Error(IO) there.
  void growMap();

  // store.cpp
  std::optional<internal::JournalRecord> journalRecord(const Txn& txn, const JournalId& j) const;
  std::optional<Head> headOf(const Txn& txn, const JournalId& j, const PublicKey& a) const;

  // members.cpp
  std::optional<Member> memberRecord(const Txn& txn, const JournalId& j, const PublicKey& m) const;
  std::vector<Member> memberRecords(const Txn& txn, const JournalId& j) const;
  size_t activeMembers(const Txn& txn, const JournalId& j) const;

  // epoch-keys.cpp
  void storeEpochKey(WriteTxn& txn, const JournalId& j, uint32_t epoch, ByteView key, ByteView storageKey);
  // Stores an epoch key that may have arrived late (a wrap to us, putEpochKey) and forgets a cached
  // "not held" for it. Returns true when the store did not hold it: then that epoch's entries were
  // stored without it and must be judged again (rejudge).
  bool storeArrivedEpochKey(WriteTxn& txn, const JournalId& j, uint32_t epoch, ByteView key, ByteView storageKey);
  // The key, unsealed; nullopt when none is stored or (with `throwIfSealedElsewhere` false) when it
  // does not open; Error(CORRUPT) when it does not open and `throwIfSealedElsewhere` is set.
  std::optional<crypto::SecretBuffer> loadEpochKey(const Txn& txn, const JournalId& j, uint32_t epoch,
                                                   ByteView storageKey, bool throwIfSealedElsewhere) const;
  // Epoch keys opened during one append call, so that a batch unseals each key once. Cleared
  // before and after every append call.
  struct CachedKey {
    std::optional<crypto::SecretBuffer> key;  // nullopt: not held here, or it did not open
  };
  std::map<std::pair<JournalId, uint32_t>, CachedKey> keyCache;
  const crypto::SecretBuffer* cachedEpochKey(const Txn& txn, const JournalId& j, uint32_t epoch, ByteView storageKey);

  // append.cpp. Verifies the entry against the journal's state and writes it. Throws EntryError
  // when refused; before throwing, nothing has been written except fork evidence. `knownBody` is
  // the plaintext of our own entry's body, when we just encrypted it (see MadeEntry). `effects`
  // gets what the append did besides storing the entry (AppendOutcome's evidenceKept, dropped).
  struct AppendEffects {
    bool evidenceKept = false;
    uint64_t dropped = 0;
  };
  AppendStatus appendIn(WriteTxn& txn, const Entry& e, const Keyring* keyring, const protocol::Body* knownBody,
                        AppendEffects& effects);
  // The AppendView appendNextIn gives `make` (append.cpp).
  class TxnAppendView;
  // Builds the author's next entry with `make` and appends it, inside `txn`.
  Entry appendNextIn(WriteTxn& txn, const JournalId& journal, const PublicKey& author, const MakeEntry& make,
                     const Keyring* keyring);
  // The role under which `e`'s author may have written it at its place: the tenure covering its
  // seq and epoch, a role that authors, and an epoch that exists (`journalEpoch`, or the next for a
  // removal). Throws EntryError (UNAUTHORISED, BAD_EPOCH) otherwise. Shared by appending and by
  // keeping fork evidence: both ask whether the author could have written the entry there.
  Role authorRole(const Txn& txn, const Entry& e, uint32_t journalEpoch) const;
  void authorise(const Txn& txn, const Entry& e, const internal::JournalRecord& journal, const Keyring* keyring,
                 const protocol::Body* knownBody);
  void authoriseKind(const Txn& txn, const Entry& e, Role role, const Keyring* keyring,
                     const protocol::Body* knownBody);
  // A second entry at a stored (author, seq): kept as evidence when its author could have written
  // it there, once per (author, seq) and up to FORKS_PER_AUTHOR_MAX per author. Always throws
  // EntryError (FORK, or why it could not have been written).
  [[noreturn]] void refuseFork(WriteTxn& txn, const Entry& e, AppendEffects& effects);
  // Removes the author's entries from `fromSeq` on (each chains on the one before, so a refused
  // entry takes the later ones with it): rows, indexes, head and the journal's counts. Returns
  // how many.
  uint64_t dropFrom(WriteTxn& txn, internal::JournalRecord& journal, const JournalId& j, const PublicKey& author,
                    uint64_t fromSeq);
  // Judges again, now that their keys are held, the journal's entries in `epochs` that were
  // stored without them: the body opens, and its kind is one the author's tenure allows. The
  // owner's entries are not judged (every kind is the owner's, and its chain carries the
  // membership). Returns how many entries were dropped.
  uint64_t rejudge(WriteTxn& txn, internal::JournalRecord& journal, const JournalId& j,
                   const std::map<uint32_t, ByteView>& epochKeys);
};

namespace internal {

// The owner's ADD_MEMBER entry for `member`, built from `view` (store/journal.cpp): every epoch
// key so far wrapped to the member, none to a relay. Throws as store::addMember does.
MadeEntry addMemberEntry(AppendView& view, const Keyring& keyring, const JournalId& journal, const PublicKey& member,
                         Role role);

}  // namespace internal

}  // namespace kith::store
