#include "store/store.h"

#include <sodium.h>

#include <climits>
#include <cstring>
#include <set>

#include "crypto/hash.h"
#include "store/lmdb.h"

namespace kith::store {

using protocol::Control;
using protocol::EntryError;
using protocol::Rejection;

namespace {

constexpr std::string_view EPOCH_KEY_AD = "kith/epoch-key/v1";
const Bytes SCHEMA_KEY = {'s', 'c', 'h', 'e', 'm', 'a'};
constexpr size_t JOURNAL_RECORD_BYTES = 32 + 4 + 8 + 8 + 8;
constexpr size_t MEMBER_RECORD_BYTES = 1 + 1 + 4;
// Row shapes, for reading rows that may be damaged: entries are journal | author | seq, timeline
// rows journal | ordered time | id -> author | seq, heads journal | author -> seq | id.
constexpr size_t ENTRY_KEY_BYTES = 32 + 32 + 8;
constexpr size_t TIMELINE_KEY_BYTES = 32 + 8 + 32;
constexpr size_t TIMELINE_VALUE_BYTES = 32 + 8;
constexpr size_t HEAD_KEY_BYTES = 32 + 32;
constexpr size_t HEAD_VALUE_BYTES = 8 + 32;

Bytes cat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes u64(uint64_t v) { Bytes b; putU64(b, v); return b; }
Bytes u32(uint32_t v) { Bytes b; putU32(b, v); return b; }
Key32 key32At(const uint8_t* p) { Key32 k; std::memcpy(k.data(), p, 32); return k; }
// Timestamps are signed; flipping the top bit makes big-endian byte order match numeric order.
uint64_t orderedTime(int64_t ms) { return static_cast<uint64_t>(ms) ^ (uint64_t{1} << 63); }

Bytes entryKey(const JournalId& j, const PublicKey& a, uint64_t seq) { return cat({j, a, u64(seq)}); }
Bytes headKey(const JournalId& j, const PublicKey& a) { return cat({j, a}); }

struct JournalRecord {
  PublicKey owner{};
  uint32_t epoch = 0;
  int64_t createdMs = 0;
  int64_t lastEntryMs = 0;
  uint64_t entryCount = 0;

  Bytes encode() const {
    Bytes b(owner.begin(), owner.end());
    putU32(b, epoch);
    putU64(b, static_cast<uint64_t>(createdMs));
    putU64(b, static_cast<uint64_t>(lastEntryMs));
    putU64(b, entryCount);
    return b;
  }
  static JournalRecord decode(ByteView b) {
    if (b.size() != JOURNAL_RECORD_BYTES) {
      throw Error(ErrorKind::CORRUPT, "the store's journal table is damaged",
                  HINT_RESTORE_STORE);
    }
    JournalRecord r;
    r.owner = key32At(b.data());
    r.epoch = getU32(b.data() + 32);
    r.createdMs = static_cast<int64_t>(getU64(b.data() + 36));
    r.lastEntryMs = static_cast<int64_t>(getU64(b.data() + 44));
    r.entryCount = getU64(b.data() + 52);
    return r;
  }
};

Bytes encodeMember(const Member& m) {
  Bytes b{static_cast<uint8_t>(m.role), static_cast<uint8_t>(m.active ? 1 : 0)};
  putU32(b, m.sinceEpoch);
  return b;
}
Member decodeMember(const PublicKey& key, ByteView b) {
  if (b.size() != MEMBER_RECORD_BYTES || b[0] > static_cast<uint8_t>(Role::RELAY)) {
    throw Error(ErrorKind::CORRUPT, "the store's member table is damaged",
                HINT_RESTORE_STORE);
  }
  return Member{key, static_cast<Role>(b[0]), b[1] != 0, getU32(b.data() + 2)};
}

bool isZero(const Key32& k) {
  return sodium_is_zero(k.data(), k.size()) == 1;
}

bool hexPrefixMatches(const Key32& key, std::string_view hexPrefix) {
  std::string hex = toHex(key);
  if (hexPrefix.size() > hex.size()) return false;
  for (size_t i = 0; i < hexPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(hexPrefix[i])) != hex[i]) return false;
  }
  return true;
}

}  // namespace

struct Store::Impl {
  Env env;
  StoreOptions options;
  Table meta, journals, entries, ids, heads, timeline, members, epochs, forks, invites;

  Impl(const std::string& dir, StoreOptions opts)
      : env(dir, opts.mapBytesInitial, TABLES_MAX, opts.create), options(opts) {}

  // Runs fn in a write transaction and commits, growing the map and running fn again when full.
  template <typename F>
  void write(F&& fn) {
    for (;;) {
      try {
        WriteTxn txn(env);
        fn(txn);
        txn.commit();
        return;
      } catch (const MapFullError&) {
        size_t size = env.mapSizeBytes();
        if (size >= options.mapBytesMax) {
          throw Error(ErrorKind::IO, "the store reached its maximum size",
                      "free disk space or move the home to a larger disk");
        }
        env.setMapSize(std::min(size * 2, options.mapBytesMax));
      }
    }
  }

  std::optional<JournalRecord> journalRecord(const Txn& txn, const JournalId& j) const {
    auto v = journals.get(txn, j);
    if (!v) return std::nullopt;
    return JournalRecord::decode(*v);
  }

  std::optional<Member> memberRecord(const Txn& txn, const JournalId& j, const PublicKey& m) const {
    auto v = members.get(txn, cat({j, m}));
    if (!v) return std::nullopt;
    return decodeMember(m, *v);
  }

  std::optional<Head> headOf(const Txn& txn, const JournalId& j, const PublicKey& a) const {
    auto v = heads.get(txn, headKey(j, a));
    if (!v) return std::nullopt;
    if (v->size() != 40) throw Error(ErrorKind::CORRUPT, "the store's head table is damaged");
    return Head{getU64(v->data()), key32At(v->data() + 8)};
  }

  size_t activeMembers(const Txn& txn, const JournalId& j) const {
    size_t n = 0;
    members.scan(txn, j, [&](ByteView k, ByteView v) {
      if (decodeMember(key32At(k.data() + 32), v).active) ++n;
      return true;
    });
    return n;
  }

  void storeEpochKey(WriteTxn& txn, const JournalId& j, uint32_t epoch, ByteView key, ByteView storageKey) {
    Bytes ad = cat({asBytes(EPOCH_KEY_AD), j, u32(epoch)});
    epochs.put(txn, cat({j, u32(epoch)}), crypto::aeadSeal(storageKey, key, ad));
  }

  // Verifies the entry against the journal's state and writes it. Throws EntryError when refused;
  // before throwing, nothing has been written except fork evidence.
  AppendStatus appendIn(WriteTxn& txn, const Entry& e, const Keyring* keyring) {
    const Control& ctl = e.control;
    // Chain first: duplicates and forks are recognised whatever the journal's state.
    if (ids.get(txn, e.id)) return AppendStatus::DUPLICATE;
    std::optional<Head> head = headOf(txn, e.journal, e.author);
    uint64_t headSeq = head ? head->seq : 0;
    if (e.seq <= headSeq) {
      forks.put(txn, cat({entryKey(e.journal, e.author, e.seq), e.id}), protocol::packEntry(e));
      throw EntryError(Rejection::FORK, "a different entry at seq " + std::to_string(e.seq) +
                                            " of this author is already stored (kept as fork evidence)");
    }
    if (e.seq != headSeq + 1) {
      throw EntryError(Rejection::BROKEN_CHAIN, "seq " + std::to_string(e.seq) + " does not follow the stored head " +
                                                    std::to_string(headSeq));
    }
    if (head ? e.prev != head->id : !isZero(e.prev)) {
      throw EntryError(Rejection::BROKEN_CHAIN, "prev is not the id of the author's previous entry");
    }

    std::optional<JournalRecord> journal = journalRecord(txn, e.journal);
    if (!journal) {
      if (ctl.type != Control::Type::CREATE) {
        throw EntryError(Rejection::UNKNOWN_JOURNAL, "the journal is not held here and this entry is not its creation");
      }
      journal = JournalRecord{e.author, 0, e.timestampMs, e.timestampMs, 0};
      members.put(txn, cat({e.journal, e.author}), encodeMember(Member{e.author, Role::OWNER, true, 0}));
    } else {
      authorise(txn, e, *journal, keyring);
    }

    // Writes.
    Bytes key = entryKey(e.journal, e.author, e.seq);
    entries.put(txn, key, protocol::packEntry(e));
    ids.put(txn, e.id, key);
    Bytes headValue = u64(e.seq);
    headValue.insert(headValue.end(), e.id.begin(), e.id.end());
    heads.put(txn, headKey(e.journal, e.author), headValue);
    timeline.put(txn, cat({e.journal, u64(orderedTime(e.timestampMs)), e.id}), cat({e.author, u64(e.seq)}));
    journal->entryCount++;
    journal->lastEntryMs = std::max(journal->lastEntryMs, e.timestampMs);
    switch (ctl.type) {
      case Control::Type::ADD_MEMBER:
        members.put(txn, cat({e.journal, ctl.member}), encodeMember(Member{ctl.member, ctl.role, true, journal->epoch}));
        break;
      case Control::Type::REMOVE_MEMBER: {
        auto m = memberRecord(txn, e.journal, ctl.member);
        KITH_ASSERT(m.has_value());
        m->active = false;
        members.put(txn, cat({e.journal, ctl.member}), encodeMember(*m));
        journal->epoch = ctl.newEpoch;
        break;
      }
      default:
        break;
    }
    journals.put(txn, e.journal, journal->encode());

    if (keyring != nullptr) {
      for (const auto& wrap : ctl.wraps) {
        if (wrap.member != keyring->identity.publicKey()) continue;
        auto key = crypto::openSealed(keyring->identity.boxPublicKey(), keyring->identity.boxSecret(), wrap.sealed);
        // A wrap that does not open or is not a key is the owner's bug or malice; the entry
        // itself is valid, so it is kept, and the epoch stays unreadable here.
        if (key && key->size() == crypto::AEAD_KEY_BYTES) {
          storeEpochKey(txn, e.journal, wrap.epoch, key->view(), keyring->storageKey);
        }
      }
    }
    return AppendStatus::ADDED;
  }

  // Epoch keys opened during one append call, so a batch unseals each key once.
  std::map<std::pair<JournalId, uint32_t>, crypto::SecretBuffer> keyCache;

  const crypto::SecretBuffer* cachedEpochKey(const Txn& txn, const JournalId& j, uint32_t epoch, ByteView storageKey) {
    auto it = keyCache.find({j, epoch});
    if (it != keyCache.end()) return &it->second;
    auto v = epochs.get(txn, cat({j, u32(epoch)}));
    if (!v) return nullptr;
    auto key = crypto::aeadOpenSecret(storageKey, *v, cat({asBytes(EPOCH_KEY_AD), j, u32(epoch)}));
    if (!key) return nullptr;
    return &keyCache.emplace(std::make_pair(j, epoch), std::move(*key)).first->second;
  }

  // The kind of an entry is inside its encrypted body, so only a node that holds the epoch key can
  // check it against the author's role (specs/entry.md); a relay checks the rest.
  void authoriseKind(const Txn& txn, const Entry& e, Role role, const Keyring& keyring) {
    const crypto::SecretBuffer* key = cachedEpochKey(txn, e.journal, e.epoch, keyring.storageKey);
    if (key == nullptr) return;
    std::optional<protocol::Body> body = protocol::openBody(e, key->view());
    if (!body) throw EntryError(Rejection::MALFORMED, "the body does not decrypt under its epoch's key");
    switch (body->kind) {
      case protocol::Kind::JOURNAL_INFO:
        if (role != Role::OWNER) throw EntryError(Rejection::UNAUTHORISED, "only the owner sets the journal's title");
        break;
      case protocol::Kind::UPDATE:
        if (role != Role::OWNER && role != Role::COAUTHOR) {
          throw EntryError(Rejection::UNAUTHORISED, "a subscriber cannot post updates");
        }
        break;
      case protocol::Kind::COMMENT:
      case protocol::Kind::HEART:
        if (body->refs.empty()) throw EntryError(Rejection::MALFORMED, "a comment or heart must refer to an entry");
        break;
    }
  }

  void authorise(const Txn& txn, const Entry& e, const JournalRecord& journal, const Keyring* keyring) {
    const Control& ctl = e.control;
    auto author = memberRecord(txn, e.journal, e.author);
    if (!author || !author->active) {
      throw EntryError(Rejection::UNAUTHORISED, "the author is not a member of the journal");
    }
    if (author->role == Role::RELAY) throw EntryError(Rejection::UNAUTHORISED, "a relay cannot author entries");
    if (e.epoch > journal.epoch + (ctl.type == Control::Type::REMOVE_MEMBER ? 1 : 0)) {
      throw EntryError(Rejection::BAD_EPOCH, "epoch " + std::to_string(e.epoch) + " does not exist yet");
    }
    if (keyring != nullptr && !e.body.empty()) authoriseKind(txn, e, author->role, *keyring);
    switch (ctl.type) {
      case Control::Type::NONE:
        if (e.body.empty()) throw EntryError(Rejection::MALFORMED, "an entry with neither control nor body");
        break;
      case Control::Type::CREATE:
        throw EntryError(Rejection::BAD_GENESIS, "the journal was already created");
      case Control::Type::ADD_MEMBER: {
        if (author->role != Role::OWNER) throw EntryError(Rejection::UNAUTHORISED, "only the owner adds members");
        if (ctl.role == Role::OWNER) throw EntryError(Rejection::UNAUTHORISED, "a journal has one owner");
        auto existing = memberRecord(txn, e.journal, ctl.member);
        if (existing && existing->active) throw EntryError(Rejection::UNAUTHORISED, "already a member");
        if (activeMembers(txn, e.journal) >= protocol::MEMBERS_MAX) {
          throw EntryError(Rejection::TOO_LARGE, "the journal has the maximum number of members");
        }
        for (const auto& w : ctl.wraps) {
          if (w.member != ctl.member || w.epoch > journal.epoch || ctl.role == Role::RELAY) {
            throw EntryError(Rejection::MALFORMED, "a key wrap of an added member is not for that member's epochs");
          }
        }
        break;
      }
      case Control::Type::REMOVE_MEMBER: {
        if (author->role != Role::OWNER) throw EntryError(Rejection::UNAUTHORISED, "only the owner removes members");
        auto target = memberRecord(txn, e.journal, ctl.member);
        if (!target || !target->active || target->role == Role::OWNER) {
          throw EntryError(Rejection::UNAUTHORISED, "the removed key is not a removable member");
        }
        if (ctl.newEpoch != journal.epoch + 1 || e.epoch != ctl.newEpoch) {
          throw EntryError(Rejection::BAD_EPOCH, "a removal must start the next epoch");
        }
        for (const auto& w : ctl.wraps) {
          auto m = memberRecord(txn, e.journal, w.member);
          if (w.epoch != ctl.newEpoch || w.member == ctl.member || !m || !m->active || m->role == Role::RELAY) {
            throw EntryError(Rejection::MALFORMED, "a removal's key wrap is not for a remaining member");
          }
        }
        break;
      }
    }
  }

  Entry loadAt(const Txn& txn, ByteView key) const {
    auto v = entries.get(txn, key);
    if (!v) throw Error(ErrorKind::CORRUPT, "the store's index points at a missing entry",
                        HINT_RESTORE_STORE);
    return protocol::unpackEntry(*v);
  }
};

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
        throw Error(ErrorKind::CORRUPT, "the store in " + dir + " is not a kith store (another program's LMDB database)",
                    HINT_RESTORE_STORE);
      }
      if (!options.create) {
        throw Error(ErrorKind::CORRUPT, "the store in " + dir + " is empty (it was never finished)", HINT_RESTORE_STORE);
      }
      s.meta = Table(txn, "meta");
      s.meta.put(txn, SCHEMA_KEY, u32(SCHEMA_VERSION));
    } else {
      s.meta = *meta;
    }
    auto version = s.meta.get(txn, SCHEMA_KEY);
    if (!version || version->size() != 4) {
      throw Error(ErrorKind::CORRUPT, "the store's schema version is missing or unreadable", HINT_RESTORE_STORE);
    }
    uint32_t v = getU32(version->data());
    if (v > SCHEMA_VERSION) {
      throw Error(ErrorKind::CORRUPT,
                  "the store was written by a newer kith (schema " + std::to_string(v) + ", this one knows " +
                      std::to_string(SCHEMA_VERSION) + ")",
                  "upgrade kith to open this home");
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

AppendStatus Store::append(const Entry& entry, const Keyring* keyring) {
  auto outcome = appendBatch({entry}, keyring);
  if (outcome[0].status == AppendStatus::REJECTED) throw EntryError(outcome[0].reason, outcome[0].message);
  return outcome[0].status;
}

std::vector<AppendOutcome> Store::appendBatch(const std::vector<Entry>& entries, const Keyring* keyring) {
  KITH_ASSERT(entries.size() <= APPEND_BATCH_MAX);
  std::vector<AppendOutcome> outcomes;
  impl_->keyCache.clear();
  impl_->write([&](WriteTxn& txn) {
    outcomes.assign(entries.size(), {});
    for (size_t i = 0; i < entries.size(); ++i) {
      try {
        outcomes[i].status = impl_->appendIn(txn, entries[i], keyring);
      } catch (const EntryError& e) {
        outcomes[i] = {AppendStatus::REJECTED, e.reason(), e.what()};
      }
    }
  });
  impl_->keyCache.clear();
  return outcomes;
}

Entry Store::appendNext(const JournalId& journal, const PublicKey& author, const MakeEntry& make,
                        const Keyring* keyring) {
  std::optional<Entry> made;
  impl_->keyCache.clear();
  impl_->write([&](WriteTxn& txn) {
    std::optional<JournalInfo> info;
    if (auto r = impl_->journalRecord(txn, journal)) {
      info = JournalInfo{journal, r->owner, r->epoch, r->createdMs, r->lastEntryMs, r->entryCount};
    }
    made = make(impl_->headOf(txn, journal, author), info);
    KITH_ASSERT(made->author == author);
    impl_->appendIn(txn, *made, keyring);
  });
  impl_->keyCache.clear();
  return std::move(*made);
}

std::vector<JournalInfo> Store::journals() const {
  ReadTxn txn(impl_->env);
  std::vector<JournalInfo> out;
  impl_->journals.scan(txn, {}, [&](ByteView k, ByteView v) {
    auto r = JournalRecord::decode(v);
    out.push_back({key32At(k.data()), r.owner, r.epoch, r.createdMs, r.lastEntryMs, r.entryCount});
    return true;
  });
  return out;
}

std::optional<JournalInfo> Store::journal(const JournalId& id) const {
  ReadTxn txn(impl_->env);
  auto r = impl_->journalRecord(txn, id);
  if (!r) return std::nullopt;
  return JournalInfo{id, r->owner, r->epoch, r->createdMs, r->lastEntryMs, r->entryCount};
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
    out[key32At(k.data() + 32)] = getU64(v.data());
    return true;
  });
  return out;
}

std::optional<Head> Store::head(const JournalId& journal, const PublicKey& author) const {
  ReadTxn txn(impl_->env);
  return impl_->headOf(txn, journal, author);
}

std::optional<Entry> Store::entry(const JournalId& journal, const PublicKey& author, uint64_t seq) const {
  ReadTxn txn(impl_->env);
  auto v = impl_->entries.get(txn, entryKey(journal, author, seq));
  if (!v) return std::nullopt;
  return protocol::unpackEntry(*v);
}

std::optional<Entry> Store::entryById(const EntryId& id) const {
  ReadTxn txn(impl_->env);
  auto k = impl_->ids.get(txn, id);
  if (!k) return std::nullopt;
  return impl_->loadAt(txn, *k);
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
  std::vector<Entry> out;
  for (const Bytes& packed : rangePacked(journal, author, fromSeq, limit, SIZE_MAX)) {
    out.push_back(protocol::unpackEntry(packed));
  }
  return out;
}

std::vector<Bytes> Store::rangePacked(const JournalId& journal, const PublicKey& author, uint64_t fromSeq,
                                      size_t limit, size_t bytesMax) const {
  limit = std::min(limit, RANGE_LIMIT_MAX);
  ReadTxn txn(impl_->env);
  std::vector<Bytes> out;
  size_t bytes = 0;
  impl_->entries.scan(txn, headKey(journal, author), entryKey(journal, author, fromSeq),
                      [&](ByteView, ByteView v) {
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
    if (k.size() == TIMELINE_KEY_BYTES) id = key32At(k.data() + 32 + 8);
    std::string reason;
    if (!id || v.size() != TIMELINE_VALUE_BYTES) {
      reason = "its timeline row is damaged";
    } else if (auto packed = impl_->entries.get(txn, cat({journal, v}))) {
      try {
        Entry e = protocol::unpackEntry(*packed);
        if (e.id == *id) {
          out.push_back(std::move(e));
          return true;
        }
        reason = "the entry stored at its place has another id";
      } catch (const EntryError& e) {
        reason = std::string("its stored bytes fail verification: ") + e.what();
      }
    } else {
      reason = "it is missing from the entries table";
    }
    r.skipped.push_back({id, reason});
    return true;
  });
  if (report == nullptr && !local.skipped.empty()) {
    const DamagedEntry& d = local.skipped.front();
    throw Error(ErrorKind::CORRUPT,
                "entry " + (d.id ? toHex(*d.id).substr(0, 12) : std::string("?")) + " of journal " +
                    toHex(journal).substr(0, 16) + " is damaged (" + d.reason + ")",
                HINT_RESTORE_STORE);
  }
  return out;
}

std::vector<Member> Store::members(const JournalId& journal) const {
  ReadTxn txn(impl_->env);
  std::vector<Member> out;
  impl_->members.scan(txn, journal, [&](ByteView k, ByteView v) {
    out.push_back(decodeMember(key32At(k.data() + 32), v));
    return true;
  });
  return out;
}

std::optional<Member> Store::member(const JournalId& journal, const PublicKey& key) const {
  ReadTxn txn(impl_->env);
  return impl_->memberRecord(txn, journal, key);
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

void Store::putEpochKey(const JournalId& journal, uint32_t epoch, ByteView key, ByteView storageKey) {
  impl_->write([&](WriteTxn& txn) { impl_->storeEpochKey(txn, journal, epoch, key, storageKey); });
}

std::optional<crypto::SecretBuffer> Store::epochKey(const JournalId& journal, uint32_t epoch,
                                                    ByteView storageKey) const {
  ReadTxn txn(impl_->env);
  auto v = impl_->epochs.get(txn, cat({journal, u32(epoch)}));
  if (!v) return std::nullopt;
  Bytes ad = cat({asBytes(EPOCH_KEY_AD), journal, u32(epoch)});
  auto key = crypto::aeadOpenSecret(storageKey, *v, ad);
  if (!key) {
    throw Error(ErrorKind::CORRUPT, "an epoch key in the store does not open with this identity",
                "this store belongs to another identity, or it is damaged");
  }
  return key;
}

namespace {
// journal (32) | role u8 | created i64 | expires i64 | used u8 | usedBy (32)
constexpr size_t INVITE_RECORD_BYTES = 32 + 1 + 8 + 8 + 1 + 32;

Bytes encodeInvite(const Invite& i) {
  Bytes b(i.journal.begin(), i.journal.end());
  b.push_back(static_cast<uint8_t>(i.role));
  putU64(b, static_cast<uint64_t>(i.createdMs));
  putU64(b, static_cast<uint64_t>(i.expiresMs));
  b.push_back(i.used ? 1 : 0);
  b.insert(b.end(), i.usedBy.begin(), i.usedBy.end());
  return b;
}

Invite decodeInvite(ByteView key, ByteView v) {
  if (key.size() != 32 || v.size() != INVITE_RECORD_BYTES || v[32] > static_cast<uint8_t>(Role::RELAY)) {
    throw Error(ErrorKind::CORRUPT, "the store's invite table is damaged", "cancel the invites and make new ones");
  }
  Invite i;
  i.id = key32At(key.data());
  i.journal = key32At(v.data());
  i.role = static_cast<Role>(v[32]);
  i.createdMs = static_cast<int64_t>(getU64(v.data() + 33));
  i.expiresMs = static_cast<int64_t>(getU64(v.data() + 41));
  i.used = v[49] != 0;
  i.usedBy = key32At(v.data() + 50);
  return i;
}
}  // namespace

const char* inviteStatusText(InviteStatus status) {
  switch (status) {
    case InviteStatus::OPEN: return "open";
    case InviteStatus::UNKNOWN: return "this invite is not known here (cancelled, mistyped or forged)";
    case InviteStatus::USED: return "this invite was already used";
    case InviteStatus::EXPIRED: return "this invite has expired";
  }
  return "unknown";
}

void Store::putInvite(const Invite& invite) {
  impl_->write([&](WriteTxn& txn) { impl_->invites.put(txn, invite.id, encodeInvite(invite)); });
}

std::vector<Invite> Store::invites() const {
  ReadTxn txn(impl_->env);
  std::vector<Invite> out;
  impl_->invites.scan(txn, {}, [&](ByteView k, ByteView v) {
    out.push_back(decodeInvite(k, v));
    return true;
  });
  return out;
}

bool Store::cancelInvite(const Key32& id) {
  bool removed = false;
  impl_->write([&](WriteTxn& txn) { removed = impl_->invites.del(txn, id); });
  return removed;
}

std::pair<InviteStatus, std::optional<Invite>> Store::checkInvite(const Key32& id, int64_t nowMs) const {
  ReadTxn txn(impl_->env);
  auto v = impl_->invites.get(txn, id);
  if (!v) return {InviteStatus::UNKNOWN, std::nullopt};
  Invite i = decodeInvite(id, *v);
  if (i.used) return {InviteStatus::USED, i};
  if (nowMs >= i.expiresMs) return {InviteStatus::EXPIRED, i};
  return {InviteStatus::OPEN, i};
}

void Store::markInviteUsed(const Key32& id, const PublicKey& by) {
  impl_->write([&](WriteTxn& txn) {
    auto v = impl_->invites.get(txn, id);
    if (!v) return;
    Invite i = decodeInvite(id, *v);
    i.used = true;
    i.usedBy = by;
    impl_->invites.put(txn, id, encodeInvite(i));
  });
}

bool Store::hasOpenInvites(int64_t nowMs) const {
  for (const auto& i : invites()) {
    if (!i.used && nowMs < i.expiresMs) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// The integrity check: one read transaction over every table, problems as values.

const char* problemKindName(ProblemKind kind) {
  switch (kind) {
    case ProblemKind::STORE_UNREADABLE: return "store-unreadable";
    case ProblemKind::RECORD_DAMAGED: return "record-damaged";
    case ProblemKind::ENTRY_DAMAGED: return "entry-damaged";
    case ProblemKind::CHAIN_BROKEN: return "chain-broken";
    case ProblemKind::INDEX_MISMATCH: return "index-mismatch";
    case ProblemKind::HEAD_MISMATCH: return "head-mismatch";
    case ProblemKind::COUNT_MISMATCH: return "count-mismatch";
  }
  return "unknown";
}

namespace {

// A badly damaged store could yield a problem per row; past this many the rest are counted only.
constexpr size_t CHECK_PROBLEMS_MAX = 1000;
constexpr size_t EPOCH_KEY_ROW_BYTES = 32 + 4;
constexpr size_t EPOCH_KEY_RECORD_BYTES = crypto::AEAD_OVERHEAD_BYTES + crypto::AEAD_KEY_BYTES;
constexpr size_t FORK_KEY_BYTES = ENTRY_KEY_BYTES + 32;

// The entries are signed, so the other members of a journal hold the same bytes: a restored
// backup or a fresh copy from them repairs any of these problems.
const std::string HINT_CHECK_RESTORE =
    std::string(HINT_RESTORE_KEY) + ", or follow the journal again from a peer in a new home";
constexpr const char* HINT_CHECK_INVITES = "cancel the invites ('kith invite cancel') and make new ones";

std::string shortId(const Key32& id, size_t chars = 12) { return toHex(id).substr(0, chars); }

struct CheckTables {
  const Table& journals;
  const Table& entries;
  const Table& ids;
  const Table& heads;
  const Table& timeline;
  const Table& members;
  const Table& epochs;
  const Table& forks;
  const Table& invites;
};

class Checker {
public:
  Checker(const Txn& txn, const CheckTables& tables, const CheckOptions& options)
      : txn_(txn), t_(tables), options_(options) {
    if (options.journal) prefix_.assign(options.journal->begin(), options.journal->end());
  }

  CheckReport run() {
    bool journalsRead = walk("journal table", [&] { walkJournals(); });
    bool idsRead = walk("ids index", [&] { walkIds(); });
    bool timelineRead = walk("timeline index", [&] { walkTimeline(); });
    bool entriesRead = walk("entry table", [&] { walkEntries(); });
    // Comparing an index with a table read only in part would report every unread row.
    if (entriesRead) {
      if (idsRead) walk("ids index", [&] { compareIds(); });
      if (timelineRead) walk("timeline index", [&] { compareTimeline(); });
      walk("head table", [&] { walkHeads(); });
      if (journalsRead) compareCounts(timelineRead);
    }
    walk("member table", [&] { walkMembers(); });
    walk("epoch-key table", [&] { walkEpochKeys(); });
    walk("fork table", [&] { walkForks(); });
    walk("invite table", [&] { walkInvites(); });
    // Only LMDB reads its free-page list (on the next write); walking it is all there is to check.
    walk("free-page list", [&] { Table::freePages().scan(txn_, {}, [](ByteView, ByteView) { return true; }); });
    if (dropped_ > 0) {
      report_.problems.push_back({ProblemKind::STORE_UNREADABLE, options_.journal, std::nullopt,
                                  "and " + std::to_string(dropped_) + " more problems not listed",
                                  HINT_CHECK_RESTORE});
    }
    return std::move(report_);
  }

private:
  struct EntryState {
    JournalId journal{};
    std::optional<EntryId> id;   // known when the entry decoded
    int64_t timestampMs = 0;
    uint32_t idRows = 0;
    uint32_t timelineRows = 0;
    size_t valueHash = 0;  // of the stored bytes as the walk of the table read them
  };
  struct AuthorState {
    uint64_t lastSeq = 0;
    std::optional<EntryId> lastId = EntryId{};  // a genesis's prev is all zero
    bool headSeen = false;
  };
  struct Tally {
    uint64_t entries = 0;
    uint64_t timelineRows = 0;
    int64_t lastEntryMs = INT64_MIN;
    bool allDecoded = true;
  };
  struct Row {
    Bytes entryKey;
    EntryId id{};
    int64_t timestampMs = 0;  // timeline rows only
  };

  const Txn& txn_;
  CheckTables t_;
  const CheckOptions& options_;
  Bytes prefix_;  // the journal asked for, or empty for all
  CheckReport report_;
  size_t dropped_ = 0;

  std::map<JournalId, std::optional<JournalRecord>> journals_;  // nullopt: the record is damaged
  std::map<Bytes, EntryState> entries_;                          // by entry key
  std::map<Bytes, AuthorState> authors_;                         // by journal | author
  std::map<JournalId, Tally> tallies_;
  std::vector<Row> idRows_, timelineRows_;
  std::map<Bytes, EntryId> idAt_;                                // an id the indexes give a place

  void problem(ProblemKind kind, std::optional<JournalId> journal, std::optional<EntryId> entry,
               std::string text, std::string hint = HINT_CHECK_RESTORE) {
    if (report_.problems.size() >= CHECK_PROBLEMS_MAX) {
      ++dropped_;
      return;
    }
    report_.problems.push_back({kind, journal, entry, std::move(text), std::move(hint)});
  }

  // Runs one table's walk; LMDB's own errors (a damaged page it notices) become a problem.
  bool walk(const char* what, const std::function<void()>& fn) {
    try {
      fn();
      return true;
    } catch (const Error& e) {
      problem(ProblemKind::STORE_UNREADABLE, options_.journal, std::nullopt,
              std::string("the store's ") + what + " cannot be read to its end (" + e.what() + ")");
      return false;
    }
  }

  bool wanted(const JournalId& journal) const { return !options_.journal || *options_.journal == journal; }

  std::string entryName(const std::optional<EntryId>& id, const PublicKey& author, uint64_t seq) const {
    std::string where = "seq " + std::to_string(seq) + " of author " + shortId(author, 8);
    return id ? "entry " + shortId(*id) + " (" + where + ")" : "the entry at " + where;
  }

  void walkJournals() {
    t_.journals.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      if (k.size() != 32) {
        problem(ProblemKind::RECORD_DAMAGED, std::nullopt, std::nullopt, "a journal record has a damaged key");
        return true;
      }
      JournalId j = key32At(k.data());
      ++report_.journals;
      try {
        journals_[j] = JournalRecord::decode(v);
      } catch (const Error&) {
        journals_[j] = std::nullopt;
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "the journal's record (its owner, epoch and counts) is damaged");
      }
      return true;
    });
  }

  void walkIds() {
    t_.ids.scan(txn_, {}, [&](ByteView k, ByteView v) {
      if (v.size() >= 32 && !wanted(key32At(v.data()))) return true;
      if (k.size() != 32 || v.size() != ENTRY_KEY_BYTES) {
        problem(ProblemKind::INDEX_MISMATCH, options_.journal, std::nullopt, "a row of the ids index is damaged");
        return true;
      }
      Row row{Bytes(v.begin(), v.end()), key32At(k.data())};
      idAt_.emplace(row.entryKey, row.id);
      idRows_.push_back(std::move(row));
      return true;
    });
  }

  void walkTimeline() {
    t_.timeline.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      if (k.size() != TIMELINE_KEY_BYTES || v.size() != TIMELINE_VALUE_BYTES) {
        std::optional<JournalId> j;
        if (k.size() >= 32) j = key32At(k.data());
        problem(ProblemKind::INDEX_MISMATCH, j, std::nullopt, "a row of the timeline index is damaged");
        return true;
      }
      JournalId j = key32At(k.data());
      Row row{cat({j, v}), key32At(k.data() + 32 + 8),
              static_cast<int64_t>(getU64(k.data() + 32) ^ (uint64_t{1} << 63))};
      idAt_.emplace(row.entryKey, row.id);
      timelineRows_.push_back(std::move(row));
      ++tallies_[j].timelineRows;
      return true;
    });
  }

  void walkEntries() {
    std::set<JournalId> unrecorded;
    t_.entries.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      if (k.size() != ENTRY_KEY_BYTES) {
        std::optional<JournalId> j;
        if (k.size() >= 32) j = key32At(k.data());
        problem(ProblemKind::ENTRY_DAMAGED, j, std::nullopt, "an entry row has a damaged key");
        return true;
      }
      JournalId j = key32At(k.data());
      PublicKey author = key32At(k.data() + 32);
      uint64_t seq = getU64(k.data() + 64);
      Bytes key(k.begin(), k.end());
      ++report_.entries;
      Tally& tally = tallies_[j];
      ++tally.entries;
      if (!journals_.contains(j) && unrecorded.insert(j).second) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "the journal has entries but no journal record");
      }

      EntryState state;
      state.journal = j;
      state.valueHash = hashOf(v);
      std::optional<Entry> e;
      try {
        e = protocol::unpackEntry(v);
      } catch (const EntryError& err) {
        tally.allDecoded = false;
        std::optional<EntryId> id;
        if (auto it = idAt_.find(key); it != idAt_.end()) id = it->second;
        problem(ProblemKind::ENTRY_DAMAGED, j, id,
                entryName(id, author, seq) + " fails verification: " + err.what());
      }
      if (e && (e->journal != j || e->author != author || e->seq != seq)) {
        tally.allDecoded = false;
        problem(ProblemKind::ENTRY_DAMAGED, j, e->id,
                "entry " + shortId(e->id) + " is stored at the place of " + entryName(std::nullopt, author, seq));
        e.reset();
      }
      if (e) {
        state.id = e->id;
        state.timestampMs = e->timestampMs;
        tally.lastEntryMs = std::max(tally.lastEntryMs, e->timestampMs);
      }

      AuthorState& chain = authors_[headKey(j, author)];
      if (seq != chain.lastSeq + 1) {
        problem(ProblemKind::CHAIN_BROKEN, j, state.id,
                "author " + shortId(author, 8) + "'s entries jump from seq " + std::to_string(chain.lastSeq) +
                    " to seq " + std::to_string(seq) + " (entries are missing)");
      } else if (e && chain.lastId && e->prev != *chain.lastId) {
        problem(ProblemKind::CHAIN_BROKEN, j, e->id,
                "entry " + shortId(e->id) + "'s prev is not the id of the author's entry at seq " +
                    std::to_string(seq - 1));
      }
      chain.lastSeq = seq;
      chain.lastId = state.id;
      entries_.emplace(std::move(key), state);
      return true;
    });
  }

  static size_t hashOf(ByteView v) {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(v.data()), v.size()));
  }

  // Follows an index row to its entry by a lookup, as `read` and replication do: a damaged
  // branch page can send a lookup astray while the walk along the leaves reads every entry well.
  void lookUp(const Row& row, const EntryState& state, const char* index) {
    auto v = t_.entries.get(txn_, row.entryKey);
    if (!v || hashOf(*v) != state.valueHash) {
      problem(ProblemKind::INDEX_MISMATCH, state.journal, row.id,
              std::string("entry ") + shortId(row.id) + " cannot be reached from the " + index +
                  " (a damaged page of the entry table)");
    }
  }

  void compareIds() {
    for (const Row& row : idRows_) {
      JournalId j = key32At(row.entryKey.data());
      auto it = entries_.find(row.entryKey);
      if (it == entries_.end()) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the ids index names entry " + shortId(row.id) + " at a place that holds no entry");
        continue;
      }
      lookUp(row, it->second, "ids index");
      ++it->second.idRows;
      if (it->second.id && *it->second.id != row.id) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the ids index names entry " + shortId(row.id) + " at the place of entry " + shortId(*it->second.id));
      }
    }
    for (const auto& [key, state] : entries_) {
      if (!state.id || state.idRows > 0) continue;
      problem(ProblemKind::INDEX_MISMATCH, state.journal, state.id,
              "entry " + shortId(*state.id) + " is missing from the ids index");
    }
  }

  void compareTimeline() {
    for (const Row& row : timelineRows_) {
      JournalId j = key32At(row.entryKey.data());
      auto it = entries_.find(row.entryKey);
      if (it == entries_.end()) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the timeline index lists entry " + shortId(row.id) + " but there is no entry at its place");
        continue;
      }
      lookUp(row, it->second, "timeline index");
      ++it->second.timelineRows;
      if (!it->second.id) continue;
      if (*it->second.id != row.id) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the timeline index lists entry " + shortId(row.id) + " at the place of entry " +
                    shortId(*it->second.id));
      } else if (it->second.timestampMs != row.timestampMs) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the timeline index lists entry " + shortId(row.id) + " at another time than the entry's");
      }
    }
    for (const auto& [key, state] : entries_) {
      if (state.timelineRows == 1) continue;
      std::string name = state.id ? "entry " + shortId(*state.id)
                                  : entryName(std::nullopt, key32At(key.data() + 32), getU64(key.data() + 64));
      problem(ProblemKind::INDEX_MISMATCH, state.journal, state.id,
              state.timelineRows == 0 ? name + " is missing from the timeline index"
                                      : name + " has " + std::to_string(state.timelineRows) + " timeline rows");
    }
  }

  void walkHeads() {
    t_.heads.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      if (k.size() != HEAD_KEY_BYTES || v.size() != HEAD_VALUE_BYTES) {
        std::optional<JournalId> j;
        if (k.size() >= 32) j = key32At(k.data());
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "a head record (an author's last seq) is damaged");
        return true;
      }
      JournalId j = key32At(k.data());
      PublicKey author = key32At(k.data() + 32);
      uint64_t seq = getU64(v.data());
      EntryId id = key32At(v.data() + 8);
      auto it = authors_.find(Bytes(k.begin(), k.end()));
      if (it == authors_.end()) {
        problem(ProblemKind::HEAD_MISMATCH, j, id,
                "author " + shortId(author, 8) + " has a head (seq " + std::to_string(seq) + ") but no entries");
        return true;
      }
      AuthorState& chain = it->second;
      chain.headSeen = true;
      if (seq != chain.lastSeq) {
        problem(ProblemKind::HEAD_MISMATCH, j, id,
                "author " + shortId(author, 8) + "'s head says seq " + std::to_string(seq) +
                    " but the last entry is seq " + std::to_string(chain.lastSeq));
      } else if (chain.lastId && *chain.lastId != id) {
        problem(ProblemKind::HEAD_MISMATCH, j, id,
                "author " + shortId(author, 8) + "'s head names entry " + shortId(id) + " but the last entry is " +
                    shortId(*chain.lastId));
      }
      return true;
    });
    for (const auto& [key, chain] : authors_) {
      if (chain.headSeen) continue;
      problem(ProblemKind::HEAD_MISMATCH, key32At(key.data()), chain.lastId,
              "author " + shortId(key32At(key.data() + 32), 8) + " has entries but no head");
    }
  }

  void compareCounts(bool timelineRead) {
    for (const auto& [j, record] : journals_) {
      if (!record) continue;
      Tally tally = tallies_[j];
      if (timelineRead && tally.timelineRows != record->entryCount) {
        problem(ProblemKind::COUNT_MISMATCH, j, std::nullopt,
                "the journal's timeline index lists " + std::to_string(tally.timelineRows) +
                    " entries but its record counts " + std::to_string(record->entryCount) +
                    ", so 'kith read' refuses to show it");
      }
      if (tally.entries != record->entryCount) {
        problem(ProblemKind::COUNT_MISMATCH, j, std::nullopt,
                "the journal's record counts " + std::to_string(record->entryCount) + " entries but it holds " +
                    std::to_string(tally.entries));
      } else if (tally.allDecoded && tally.entries > 0 && tally.lastEntryMs != record->lastEntryMs) {
        problem(ProblemKind::COUNT_MISMATCH, j, std::nullopt,
                "the journal's record gives another time for its last entry than its entries do");
      }
    }
  }

  void walkMembers() {
    std::set<JournalId> withOwner;
    t_.members.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      std::optional<JournalId> j;
      if (k.size() >= 32) j = key32At(k.data());
      if (k.size() != 64) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "a member record has a damaged key");
        return true;
      }
      PublicKey key = key32At(k.data() + 32);
      try {
        Member m = decodeMember(key, v);
        if (m.role == Role::OWNER && journals_.contains(*j) && journals_[*j] && journals_[*j]->owner == key) {
          withOwner.insert(*j);
        }
      } catch (const Error&) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "the record of member " + shortId(key, 8) + " is damaged");
      }
      return true;
    });
    for (const auto& [j, record] : journals_) {
      if (record && !withOwner.contains(j)) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "the journal's owner is missing from its members");
      }
    }
  }

  void walkEpochKeys() {
    t_.epochs.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      std::optional<JournalId> j;
      if (k.size() >= 32) j = key32At(k.data());
      if (k.size() != EPOCH_KEY_ROW_BYTES || v.size() != EPOCH_KEY_RECORD_BYTES) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "an epoch key record is damaged");
        return true;
      }
      uint32_t epoch = getU32(k.data() + 32);
      if (options_.storageKey) {
        Bytes ad = cat({asBytes(EPOCH_KEY_AD), *j, u32(epoch)});
        if (!crypto::aeadOpenSecret(*options_.storageKey, v, ad)) {
          problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt,
                  "the key of epoch " + std::to_string(epoch) + " does not open with this identity",
                  "if this home's identity.key was replaced, put the right one back; otherwise " +
                      HINT_CHECK_RESTORE);
        }
      }
      return true;
    });
  }

  void walkForks() {
    t_.forks.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      std::optional<JournalId> j;
      if (k.size() >= 32) j = key32At(k.data());
      bool ok = false;
      if (k.size() == FORK_KEY_BYTES) {
        try {
          Entry e = protocol::unpackEntry(v);
          ok = e.id == key32At(k.data() + ENTRY_KEY_BYTES) &&
               Bytes(k.begin(), k.begin() + ENTRY_KEY_BYTES) == entryKey(e.journal, e.author, e.seq);
        } catch (const EntryError&) {
        }
      }
      if (!ok) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt,
                "a piece of fork evidence (a refused second entry) is damaged",
                "it is kept only as evidence and nothing reads it; " + HINT_CHECK_RESTORE + " to keep it");
      }
      return true;
    });
  }

  void walkInvites() {
    t_.invites.scan(txn_, {}, [&](ByteView k, ByteView v) {
      try {
        Invite i = decodeInvite(k, v);
        if (wanted(i.journal) && !journals_.contains(i.journal) && !options_.journal) {
          problem(ProblemKind::RECORD_DAMAGED, i.journal, std::nullopt,
                  "invite " + shortId(i.id, 8) + " is for a journal this home does not hold", HINT_CHECK_INVITES);
        }
      } catch (const Error&) {
        if (v.size() >= 32 && !wanted(key32At(v.data()))) return true;
        problem(ProblemKind::RECORD_DAMAGED, options_.journal, std::nullopt, "an invite record is damaged",
                HINT_CHECK_INVITES);
      }
      return true;
    });
  }
};

}  // namespace

CheckReport Store::checkIntegrity(const CheckOptions& options) const {
  ReadTxn txn(impl_->env);
  const Impl& s = *impl_;
  Checker checker(txn, {s.journals, s.entries, s.ids, s.heads, s.timeline, s.members, s.epochs, s.forks, s.invites},
                  options);
  return checker.run();
}

size_t Store::changeCounter() const { return impl_->env.lastTxnId(); }
int Store::reclaimStaleReaders() const { return impl_->env.reclaimStaleReaders(); }
size_t Store::mapBytes() const { return impl_->env.mapSizeBytes(); }

void Store::copyCompactTo(int fd) const {
  check(mdb_env_copyfd2(impl_->env.raw(), fd, MDB_CP_COMPACT), "copying the store");
}

}  // namespace kith::store
