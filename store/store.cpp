// The store: opening it (the schema and the tables) and reading entries back. Appending is
// append.cpp; members, epoch keys, invites and the integrity check have files of their own.
#include <algorithm>
#include <climits>
#include <set>

#include "store/store-impl.h"

namespace kith::store {

using namespace internal;
using protocol::EntryError;

void Store::Impl::growMap() {
  size_t size = env.mapSizeBytes();
  if (size >= options.mapBytesMax) {
    throw Error(ErrorKind::IO, "the store reached its maximum size",
                "free disk space or move the home to a larger disk");
  }
  env.setMapSize(std::min(size * 2, options.mapBytesMax));
}

std::optional<JournalRecord> Store::Impl::journalRecord(const Txn& txn, const JournalId& j) const {
  auto v = journals.get(txn, j);
  if (!v) return std::nullopt;
  return JournalRecord::decode(*v);
}

std::optional<Head> Store::Impl::headOf(const Txn& txn, const JournalId& j, const PublicKey& a) const {
  auto v = heads.get(txn, headKey(j, a));
  if (!v) return std::nullopt;
  return decodeHead(*v);
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

std::unique_ptr<Store> Store::open(const std::string& dir, StoreOptions options) {
  auto impl = std::make_unique<Impl>(dir, options);
  Impl& s = *impl;
  s.write([&](WriteTxn& txn) {
    auto meta = Table::tryOpen(txn, "meta");
    if (!meta) {
      // Only a brand-new environment may become a kith store; anything else in it is foreign.
      if (namedTableCount(txn) != 0) {
        throw Error(ErrorKind::CORRUPT,
                    "the store in " + dir + " is not a kith store (another program's LMDB database)",
                    HINT_RESTORE_STORE);
      }
      if (!options.create) {
        throw Error(ErrorKind::CORRUPT, "the store in " + dir + " is empty (it was never finished)",
                    HINT_RESTORE_STORE);
      }
      s.meta = Table(txn, "meta");
      s.meta.put(txn, SCHEMA_KEY, u32(SCHEMA_VERSION));
    } else {
      s.meta = *meta;
    }
    auto version = s.meta.get(txn, SCHEMA_KEY);
    if (!version || version->size() != SCHEMA_VALUE_BYTES) {
      throw Error(ErrorKind::CORRUPT, "the store's schema version is missing or unreadable", HINT_RESTORE_STORE);
    }
    uint32_t v = getU32(version->data());
    if (v > SCHEMA_VERSION) {
      throw Error(ErrorKind::CORRUPT,
                  "the store was written by a newer kith (schema " + std::to_string(v) + ", this one knows " +
                      std::to_string(SCHEMA_VERSION) + ")",
                  "upgrade kith to open this home");
    }
    if (v < SCHEMA_VERSION) {
      // Schema 1 held entries of format 1, whose removals have no cut-off (specs/entry.md, "Format
      // versions"): this kith cannot judge them, so it does not open them.
      throw Error(ErrorKind::CORRUPT,
                  "the store was written by an older kith (schema " + std::to_string(v) + ", this one reads " +
                      std::to_string(SCHEMA_VERSION) + ")",
                  "make a new home and follow your journals again from their members");
    }
    s.journals = Table(txn, "journals");
    s.entries = Table(txn, "entries");
    s.ids = Table(txn, "ids");
    s.heads = Table(txn, "heads");
    s.timeline = Table(txn, "timeline");
    s.members = Table(txn, "members");
    s.epochs = Table(txn, "epochs");
    s.forks = Table(txn, "forks");
    s.invites = Table(txn, "invites");
  });
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

std::vector<JournalInfo> Store::journals() const {
  ReadTxn txn(impl_->env);
  std::vector<JournalInfo> out;
  impl_->journals.scan(txn, {}, [&](ByteView k, ByteView v) {
    out.push_back(JournalRecord::decode(v).info(key32At(k.data())));
    return true;
  });
  return out;
}

std::optional<JournalInfo> Store::journal(const JournalId& id) const {
  ReadTxn txn(impl_->env);
  auto r = impl_->journalRecord(txn, id);
  if (!r) return std::nullopt;
  return r->info(id);
}

std::vector<JournalId> Store::findJournals(std::string_view hexPrefix) const {
  std::vector<JournalId> out;
  for (const auto& j : journals()) {
    if (hexPrefixMatches(j.id, hexPrefix)) out.push_back(j.id);
  }
  return out;
}

VersionVector Store::versionVector(const JournalId& journal) const {
  ReadTxn txn(impl_->env);
  VersionVector out;
  impl_->heads.scan(txn, journal, [&](ByteView k, ByteView v) {
    out[key32At(k.data() + KEY_BYTES)] = getU64(v.data());
    return true;
  });
  return out;
}

std::optional<Head> Store::head(const JournalId& journal, const PublicKey& author) const {
  ReadTxn txn(impl_->env);
  return impl_->headOf(txn, journal, author);
}

namespace {

// An entry this store wrote, read back from under `key` (its row in the entries table): unpacked
// without verifying its signature again (specs/entry.md, "What is checked where"), but refused
// when its journal, author or seq is not the place it is stored at, so that damage to the
// entry's bytes is caught by the id and the position they hash into.
Entry unpackAt(ByteView key, ByteView packed) {
  Entry e = protocol::unpackEntry(packed);
  Bytes at = entryKey(e.journal, e.author, e.seq);
  if (!std::equal(at.begin(), at.end(), key.begin(), key.end())) {
    throw EntryError(protocol::Rejection::MALFORMED, "the entry stored at this place is another one (damaged)");
  }
  return e;
}

}  // namespace

std::optional<Entry> Store::entry(const JournalId& journal, const PublicKey& author, uint64_t seq) const {
  ReadTxn txn(impl_->env);
  Bytes key = entryKey(journal, author, seq);
  auto v = impl_->entries.get(txn, key);
  if (!v) return std::nullopt;
  return unpackAt(key, *v);
}

std::optional<Entry> Store::entryById(const EntryId& id) const {
  ReadTxn txn(impl_->env);
  auto k = impl_->ids.get(txn, id);
  if (!k) return std::nullopt;
  auto v = impl_->entries.get(txn, *k);
  if (!v) throw Error(ErrorKind::CORRUPT, "the store's index points at a missing entry", HINT_RESTORE_STORE);
  Entry e = unpackAt(*k, *v);
  if (e.id != id) {
    throw EntryError(protocol::Rejection::MALFORMED,
                     "the entry stored under id " + shortId(id) + " has another id (damaged)");
  }
  return e;
}

std::vector<EntryId> Store::findEntries(std::string_view hexPrefix, size_t limit) const {
  ReadTxn txn(impl_->env);
  std::vector<EntryId> out;
  Bytes prefix = tryFromHex(hexPrefix.substr(0, hexPrefix.size() & ~size_t{1})).value_or(Bytes{});
  impl_->ids.scan(txn, prefix, [&](ByteView k, ByteView) {
    Key32 id = key32At(k.data());
    if (hexPrefixMatches(id, hexPrefix)) out.push_back(id);
    return out.size() < limit;
  });
  return out;
}

std::vector<Entry> Store::range(const JournalId& journal, const PublicKey& author, uint64_t fromSeq,
                                size_t limit) const {
  limit = std::min(limit, RANGE_LIMIT_MAX);
  ReadTxn txn(impl_->env);
  std::vector<Entry> out;
  impl_->entries.scan(txn, headKey(journal, author), entryKey(journal, author, fromSeq), [&](ByteView k, ByteView v) {
    if (out.size() >= limit) return false;
    out.push_back(unpackAt(k, v));
    return true;
  });
  return out;
}

std::vector<Bytes> Store::rangePacked(const JournalId& journal, const PublicKey& author, uint64_t fromSeq, size_t limit,
                                      size_t bytesMax) const {
  limit = std::min(limit, RANGE_LIMIT_MAX);
  ReadTxn txn(impl_->env);
  std::vector<Bytes> out;
  size_t bytes = 0;
  impl_->entries.scan(txn, headKey(journal, author), entryKey(journal, author, fromSeq), [&](ByteView, ByteView v) {
    if (out.size() >= limit || (!out.empty() && bytes + v.size() > bytesMax)) return false;
    bytes += v.size();
    out.emplace_back(v.begin(), v.end());
    return true;
  });
  return out;
}

std::vector<Entry> Store::timeline(const JournalId& journal, TimelineReport* report) const {
  ReadTxn txn(impl_->env);
  std::vector<Entry> out;
  TimelineReport local;
  TimelineReport& r = report != nullptr ? *report : local;
  r = {};
  if (auto record = impl_->journalRecord(txn, journal)) r.expected = record->entryCount;
  impl_->timeline.scan(txn, journal, [&](ByteView k, ByteView v) {
    ++r.rows;
    // A row is journal | ordered time | id -> author | seq.
    std::optional<EntryId> id;
    if (k.size() == TIMELINE_KEY_BYTES) id = key32At(k.data() + KEY_BYTES + 8);
    std::string reason;
    if (!id || v.size() != TIMELINE_VALUE_BYTES) {
      reason = "its timeline row is damaged";
      // A damaged key with its value whole still says which entry the row was: name it, so that
      // the person is told which entry is not shown.
      if (!id && v.size() == TIMELINE_VALUE_BYTES) {
        if (auto packed = impl_->entries.get(txn, cat({journal, v}))) {
          try {
            id = protocol::decodePackedEntry(*packed).id;
          } catch (const EntryError&) {
            // The entry is damaged too: the row stays unnamed.
          }
        }
      }
    } else if (auto packed = impl_->entries.get(txn, cat({journal, v}))) {
      try {
        Entry e = protocol::decodePackedEntry(*packed);  // verifies: `kith read` names damage
        if (e.id == *id) {
          out.push_back(std::move(e));
          return true;
        }
        reason = "the entry stored at its place has another id";
      } catch (const EntryError& e) { reason = std::string("its stored bytes fail verification: ") + e.what(); }
    } else {
      reason = "it is missing from the entries table";
    }
    r.skipped.push_back({id, reason});
    return true;
  });
  // Rows too damaged to say which entry they were: name the journal's entries that no row showed
  // or named, so that the person is told which entries are not shown.
  auto unnamed = std::count_if(r.skipped.begin(), r.skipped.end(), [](const DamagedEntry& d) { return !d.id; });
  if (unnamed > 0) {
    std::set<EntryId> accounted;
    for (const Entry& e : out) accounted.insert(e.id);
    for (const DamagedEntry& d : r.skipped) {
      if (d.id) accounted.insert(*d.id);
    }
    std::vector<DamagedEntry> named;
    impl_->entries.scan(txn, journal, [&](ByteView, ByteView v) {
      try {
        EntryId id = protocol::decodePackedEntry(v).id;
        if (!accounted.contains(id)) named.push_back({id, "its timeline row is damaged"});
      } catch (const EntryError&) {
        // Damaged as well: the unnamed row stands for it.
      }
      return true;
    });
    if (!named.empty()) {
      std::erase_if(r.skipped, [](const DamagedEntry& d) { return !d.id; });
      r.skipped.insert(r.skipped.end(), named.begin(), named.end());
    }
  }
  if (report == nullptr && !local.skipped.empty()) {
    const DamagedEntry& d = local.skipped.front();
    throw Error(ErrorKind::CORRUPT,
                "entry " + (d.id ? toHex(*d.id).substr(0, 12) : std::string("?")) + " of journal " +
                    toHex(journal).substr(0, 16) + " is damaged (" + d.reason + ")",
                HINT_RESTORE_STORE);
  }
  return out;
}

std::vector<Bytes> Store::forks(const JournalId& journal) const {
  ReadTxn txn(impl_->env);
  std::vector<Bytes> out;
  impl_->forks.scan(txn, journal, [&](ByteView, ByteView v) {
    out.emplace_back(v.begin(), v.end());
    return true;
  });
  return out;
}

std::string Store::dataFile() const { return impl_->directory + "/data.mdb"; }

size_t Store::changeCounter() const { return impl_->env.lastTxnId(); }
size_t Store::writtenCounter() const { return impl_->env.newestWrittenTxnId(); }
int Store::reclaimStaleReaders() const { return impl_->env.reclaimStaleReaders(); }
size_t Store::mapBytes() const { return impl_->env.mapSizeBytes(); }

void Store::copyCompactTo(int fd) const {
  check(mdb_env_copyfd2(impl_->env.raw(), fd, MDB_CP_COMPACT), "copying the store");
}

}  // namespace kith::store
