#include "store/relay-store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "base/clock.h"
#include "base/error.h"
#include "crypto/hash.h"
#include "store/limits.h"
#include "store/lmdb.h"

namespace kith::store {
namespace {

constexpr std::string_view SCHEMA_KEY = "schema";
constexpr std::string_view TOTALS_KEY = "totals";
constexpr std::string_view DEDUPE_DOMAIN = "kith/relay-dedupe/v1";
constexpr std::string_view TOKEN_DOMAIN = "kith/relay-token/v1";
constexpr const char* HINT_RELAY_STORE =
    "the relay's store is damaged: stop the relay, move its home aside and make a new one with 'kith relay init' "
    "(households put their envelopes again)";

constexpr size_t MAILBOX_RECORD_BYTES = 32 * 3 + 1 + 8 * 6;
constexpr size_t TOTALS_BYTES = 8 * 4;
constexpr size_t TOKEN_RECORD_BYTES = 8;
constexpr size_t ENVELOPE_HEADER_BYTES = 8;
constexpr uint8_t STATUS_OPEN = 0;
constexpr uint8_t STATUS_CLOSED = 1;
// Tables of the relay's environment.
constexpr unsigned RELAY_TABLES_MAX = 8;

[[noreturn]] void damaged(const std::string& what) {
  throw Error(ErrorKind::CORRUPT, "the relay's store is damaged (" + what + ")", HINT_RELAY_STORE);
}

Key32 key32At(const uint8_t* p) {
  Key32 k;
  std::memcpy(k.data(), p, k.size());
  return k;
}

void putI64(Bytes& out, int64_t v) { putU64(out, static_cast<uint64_t>(v)); }
int64_t getI64(const uint8_t* p) { return static_cast<int64_t>(getU64(p)); }

Bytes encodeMailbox(const MailboxRecord& m) {
  Bytes out;
  out.reserve(MAILBOX_RECORD_BYTES);
  out.insert(out.end(), m.credential.begin(), m.credential.end());
  out.insert(out.end(), m.admin.begin(), m.admin.end());
  out.insert(out.end(), m.tokenHash.begin(), m.tokenHash.end());
  out.push_back(m.closed ? STATUS_CLOSED : STATUS_OPEN);
  putI64(out, m.createdMs);
  putI64(out, m.closedMs);
  putU64(out, m.envelopes);
  putU64(out, m.bytes);
  putU64(out, m.firstCursor);
  putU64(out, m.lastCursor);
  KITH_ASSERT(out.size() == MAILBOX_RECORD_BYTES);
  return out;
}

MailboxRecord decodeMailbox(ByteView v) {
  if (v.size() != MAILBOX_RECORD_BYTES) damaged("a mailbox record of " + std::to_string(v.size()) + " bytes");
  const uint8_t* p = v.data();
  MailboxRecord m;
  m.credential = key32At(p);
  m.admin = key32At(p + 32);
  m.tokenHash = key32At(p + 64);
  uint8_t status = p[96];
  if (status != STATUS_OPEN && status != STATUS_CLOSED) damaged("a mailbox record with an unknown status");
  m.closed = status == STATUS_CLOSED;
  m.createdMs = getI64(p + 97);
  m.closedMs = getI64(p + 105);
  m.envelopes = getU64(p + 113);
  m.bytes = getU64(p + 121);
  m.firstCursor = getU64(p + 129);
  m.lastCursor = getU64(p + 137);
  return m;
}

Bytes encodeTotals(const RelayTotals& t) {
  Bytes out;
  putU64(out, t.mailboxesOpen);
  putU64(out, t.mailboxesClosed);
  putU64(out, t.envelopes);
  putU64(out, t.bytes);
  return out;
}

RelayTotals decodeTotals(ByteView v) {
  if (v.size() != TOTALS_BYTES) damaged("the totals record");
  RelayTotals t;
  t.mailboxesOpen = getU64(v.data());
  t.mailboxesClosed = getU64(v.data() + 8);
  t.envelopes = getU64(v.data() + 16);
  t.bytes = getU64(v.data() + 24);
  return t;
}

Bytes envelopeKey(const Key32& id, uint64_t cursor) {
  Bytes k(id.begin(), id.end());
  putU64(k, cursor);
  return k;
}

Bytes dedupeKey(const Key32& id, const Key32& hash) {
  Bytes k(id.begin(), id.end());
  k.insert(k.end(), hash.begin(), hash.end());
  return k;
}

Key32 envelopeHash(ByteView data) { return crypto::hash(DEDUPE_DOMAIN, {data}); }
Key32 tokenHash(ByteView token) { return crypto::hash(TOKEN_DOMAIN, {token}); }

RelayRefusal refusal(RelayRefusalKind kind, std::string message) { return RelayRefusal{kind, std::move(message)}; }

}  // namespace

const char* admissionName(RelayAdmission admission) { return admission == RelayAdmission::TOKEN ? "token" : "open"; }

const char* refusalName(RelayRefusalKind kind) {
  switch (kind) {
    case RelayRefusalKind::NO_MAILBOX:
      return "no_mailbox";
    case RelayRefusalKind::MAILBOX_EXISTS:
      return "mailbox_exists";
    case RelayRefusalKind::TOKEN_REQUIRED:
      return "token_required";
    case RelayRefusalKind::TOKEN_UNKNOWN:
      return "token_unknown";
    case RelayRefusalKind::TOKEN_USED_UP:
      return "token_used_up";
    case RelayRefusalKind::MAILBOXES_FULL:
      return "mailboxes_full";
    case RelayRefusalKind::MAILBOX_CLOSED:
      return "mailbox_closed";
    case RelayRefusalKind::MAILBOX_FULL:
      return "mailbox_full";
    case RelayRefusalKind::RELAY_FULL:
      return "relay_full";
    case RelayRefusalKind::COUNT:
      break;
  }
  KITH_ASSERT(false);
  return "";
}

struct RelayStore::Impl {
  Env env;
  Table meta, mailboxes, envelopes, dedupe, tokens;

  Impl(const std::string& dir, bool create) : env(dir, MAP_BYTES_INITIAL, RELAY_TABLES_MAX, create) {}

  // Runs fn in a write transaction and commits, growing the map and running fn again when full.
  // fn returns false to abort instead (a refusal: nothing is written).
  template <typename F>
  void write(F&& fn) {
    for (;;) {
      try {
        WriteTxn txn(env);
        if (fn(txn)) txn.commit();
        return;
      } catch (const MapFullError&) {
        size_t size = env.mapSizeBytes();
        if (size >= MAP_BYTES_MAX) {
          throw Error(ErrorKind::IO, "the relay's store reached its maximum size",
                      "lower disk_cap_bytes in relay.json or move the relay's home to a larger disk");
        }
        env.setMapSize(std::min(size * 2, MAP_BYTES_MAX));
      }
    }
  }

  RelayTotals readTotals(const Txn& txn) const {
    auto v = meta.get(txn, asBytes(TOTALS_KEY));
    if (!v) damaged("the totals record is missing");
    return decodeTotals(*v);
  }
  void writeTotals(WriteTxn& txn, const RelayTotals& t) { meta.put(txn, asBytes(TOTALS_KEY), encodeTotals(t)); }

  std::optional<MailboxRecord> readMailbox(const Txn& txn, const Key32& id) const {
    auto v = mailboxes.get(txn, id);
    if (!v) return std::nullopt;
    return decodeMailbox(*v);
  }

  // Deletes the mailbox's envelopes (and their dedupe rows), at most `rowsMax` of them, oldest
  // first; returns how many and their bytes. Adjusts `m` but not the totals.
  std::pair<uint64_t, uint64_t> dropEnvelopes(WriteTxn& txn, const Key32& id, MailboxRecord& m, size_t rowsMax,
                                              std::optional<int64_t> olderThanMs) {
    std::vector<std::pair<Bytes, Key32>> doomed;  // envelope key, dedupe hash
    uint64_t bytes = 0;
    uint64_t nextFirst = 0;
    envelopes.scan(txn, id, [&](ByteView k, ByteView v) {
      if (v.size() < ENVELOPE_HEADER_BYTES) damaged("an envelope row shorter than its header");
      if (olderThanMs && getI64(v.data()) >= *olderThanMs) {
        nextFirst = getU64(k.data() + 32);
        return false;
      }
      if (doomed.size() >= rowsMax) {
        nextFirst = getU64(k.data() + 32);
        return false;
      }
      ByteView data = v.subspan(ENVELOPE_HEADER_BYTES);
      doomed.emplace_back(Bytes(k.begin(), k.end()), envelopeHash(data));
      bytes += data.size();
      return true;
    });
    for (const auto& [key, hash] : doomed) {
      envelopes.del(txn, key);
      dedupe.del(txn, dedupeKey(id, hash));
    }
    m.envelopes = doomed.size() > m.envelopes ? 0 : m.envelopes - doomed.size();
    m.bytes = bytes > m.bytes ? 0 : m.bytes - bytes;
    if (!doomed.empty()) m.firstCursor = nextFirst;
    return {doomed.size(), bytes};
  }

  void deleteMailbox(WriteTxn& txn, const Key32& id, MailboxRecord& m, RelayTotals& t) {
    auto [count, bytes] = dropEnvelopes(txn, id, m, SIZE_MAX, std::nullopt);
    t.envelopes -= std::min(t.envelopes, count);
    t.bytes -= std::min(t.bytes, bytes);
    if (m.closed) {
      t.mailboxesClosed -= std::min<uint64_t>(t.mailboxesClosed, 1);
    } else {
      t.mailboxesOpen -= std::min<uint64_t>(t.mailboxesOpen, 1);
    }
    mailboxes.del(txn, id);
  }
};

RelayStore::RelayStore(const std::string& dir, RelayPolicy policy, RelayStoreOptions options) : policy_(policy) {
  if (options.clock) clock_ = std::move(options.clock);
  if (options.create && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw Error(ErrorKind::IO, "cannot create the folder " + dir + ": " + std::strerror(errno));
  }
  impl_ = std::make_unique<Impl>(dir, options.create);
  Impl& s = *impl_;
  s.write([&](WriteTxn& txn) {
    auto meta = Table::tryOpen(txn, "relay-meta");
    if (!meta) {
      if (namedTableCount(txn) != 0) {
        throw Error(ErrorKind::CORRUPT,
                    "the store in " + dir + " is not a relay's store (a household's store, or another program's)",
                    "give the relay commands a relay's home (made by 'kith relay init')");
      }
      if (!options.create) damaged("it is empty: it was never finished");
      s.meta = Table(txn, "relay-meta");
      Bytes version;
      putU32(version, RELAY_SCHEMA_VERSION);
      s.meta.put(txn, asBytes(SCHEMA_KEY), version);
      s.writeTotals(txn, RelayTotals{});
    } else {
      s.meta = *meta;
    }
    auto version = s.meta.get(txn, asBytes(SCHEMA_KEY));
    if (!version || version->size() != 4) damaged("the schema version is missing");
    uint32_t v = getU32(version->data());
    if (v != RELAY_SCHEMA_VERSION) {
      throw Error(ErrorKind::CORRUPT,
                  "the relay's store has schema " + std::to_string(v) + ", this kith reads " +
                      std::to_string(RELAY_SCHEMA_VERSION),
                  "run the kith that made it");
    }
    s.mailboxes = Table(txn, "mailboxes");
    s.envelopes = Table(txn, "envelopes");
    s.dedupe = Table(txn, "dedupe");
    s.tokens = Table(txn, "tokens");
    return true;
  });
}

RelayStore::~RelayStore() = default;

int64_t RelayStore::now() const { return clock_ ? clock_() : nowMs(); }

std::optional<RelayRefusal> RelayStore::create(const Key32& id, const Key32& credential, const Key32& admin,
                                               ByteView token) {
  std::optional<RelayRefusal> refused;
  int64_t at = now();
  impl_->write([&](WriteTxn& txn) {
    Impl& s = *impl_;
    if (auto existing = s.readMailbox(txn, id)) {
      if (existing->credential == credential && existing->admin == admin) return false;  // idempotent
      refused = refusal(RelayRefusalKind::MAILBOX_EXISTS, "mailbox exists");
      return false;
    }
    RelayTotals t = s.readTotals(txn);
    if (t.mailboxesOpen >= policy_.mailboxesMax) {
      refused = refusal(RelayRefusalKind::MAILBOXES_FULL,
                        "relay full: " + std::to_string(policy_.mailboxesMax) + " mailboxes (the relay's maximum)");
      return false;
    }
    MailboxRecord m;
    m.credential = credential;
    m.admin = admin;
    m.createdMs = at;
    if (policy_.admission == RelayAdmission::TOKEN) {
      if (token.empty()) {
        refused = refusal(RelayRefusalKind::TOKEN_REQUIRED, "this relay needs an access token from its operator");
        return false;
      }
      Key32 hash = tokenHash(token);
      auto record = s.tokens.get(txn, hash);
      if (!record) {
        refused = refusal(RelayRefusalKind::TOKEN_UNKNOWN, "unknown access token");
        return false;
      }
      if (record->size() != TOKEN_RECORD_BYTES) damaged("a token record");
      uint32_t allowed = getU32(record->data());
      uint32_t used = getU32(record->data() + 4);
      if (used >= allowed) {
        refused = refusal(RelayRefusalKind::TOKEN_USED_UP,
                          "the access token was used for all its " + std::to_string(allowed) + " mailboxes");
        return false;
      }
      Bytes updated;
      putU32(updated, allowed);
      putU32(updated, used + 1);
      s.tokens.put(txn, hash, updated);
      m.tokenHash = hash;
    }
    s.mailboxes.put(txn, id, encodeMailbox(m));
    t.mailboxesOpen++;
    s.writeTotals(txn, t);
    return true;
  });
  return refused;
}

std::optional<RelayRefusal> RelayStore::rotate(const Key32& id, const Key32& newId, const Key32& newCredential) {
  std::optional<RelayRefusal> refused;
  int64_t at = now();
  impl_->write([&](WriteTxn& txn) {
    Impl& s = *impl_;
    auto old = s.readMailbox(txn, id);
    if (!old) {
      refused = refusal(RelayRefusalKind::NO_MAILBOX, "no such mailbox");
      return false;
    }
    RelayTotals t = s.readTotals(txn);
    auto target = s.readMailbox(txn, newId);
    if (target && (target->credential != newCredential || target->admin != old->admin)) {
      refused = refusal(RelayRefusalKind::MAILBOX_EXISTS, "mailbox exists");
      return false;
    }
    if (!target && old->closed) {
      // A mailbox is rotated once: a closed one makes no new mailbox (a retried rotate found its
      // target above).
      refused = refusal(RelayRefusalKind::MAILBOX_CLOSED, "mailbox closed");
      return false;
    }
    if (!target && newId != id) {
      MailboxRecord m;
      m.credential = newCredential;
      m.admin = old->admin;
      m.tokenHash = old->tokenHash;
      m.createdMs = at;
      s.mailboxes.put(txn, newId, encodeMailbox(m));
      t.mailboxesOpen++;
    }
    if (!old->closed && newId != id) {
      old->closed = true;
      old->closedMs = at;
      s.mailboxes.put(txn, id, encodeMailbox(*old));
      t.mailboxesOpen -= std::min<uint64_t>(t.mailboxesOpen, 1);
      t.mailboxesClosed++;
    }
    s.writeTotals(txn, t);
    return true;
  });
  return refused;
}

bool RelayStore::remove(const Key32& id) {
  bool found = false;
  impl_->write([&](WriteTxn& txn) {
    Impl& s = *impl_;
    auto m = s.readMailbox(txn, id);
    if (!m) return false;
    found = true;
    RelayTotals t = s.readTotals(txn);
    s.deleteMailbox(txn, id, *m, t);
    s.writeTotals(txn, t);
    return true;
  });
  return found;
}

std::optional<MailboxRecord> RelayStore::mailbox(const Key32& id) const {
  ReadTxn txn(impl_->env);
  return impl_->readMailbox(txn, id);
}

PutOutcome RelayStore::put(const Key32& id, const std::vector<ByteView>& envelopes) {
  PutOutcome out;
  int64_t at = now();
  impl_->write([&](WriteTxn& txn) {
    Impl& s = *impl_;
    out = PutOutcome{};
    auto m = s.readMailbox(txn, id);
    if (!m) {
      out.refusal = refusal(RelayRefusalKind::NO_MAILBOX, "no such mailbox");
      return false;
    }
    if (m->closed) {
      out.refusal = refusal(RelayRefusalKind::MAILBOX_CLOSED, "mailbox closed");
      return false;
    }
    // First what is new (not held, and not twice in this call), then the limits, then the writes:
    // a refusal stores nothing.
    std::vector<std::pair<ByteView, Key32>> fresh;
    std::set<Key32> seen;
    uint64_t freshBytes = 0;
    for (ByteView e : envelopes) {
      Key32 hash = envelopeHash(e);
      if (!seen.insert(hash).second) continue;
      if (s.dedupe.get(txn, dedupeKey(id, hash))) continue;
      fresh.emplace_back(e, hash);
      freshBytes += e.size();
    }
    out.cursor = m->lastCursor;
    if (fresh.empty()) return false;
    if (m->bytes + freshBytes > policy_.mailboxQuotaBytes) {
      out.refusal =
          refusal(RelayRefusalKind::MAILBOX_FULL, "mailbox full: " + std::to_string(m->bytes) + " of " +
                                                      std::to_string(policy_.mailboxQuotaBytes) + " bytes (quota)");
      return false;
    }
    if (m->envelopes + fresh.size() > policy_.mailboxQuotaEnvelopes) {
      out.refusal = refusal(RelayRefusalKind::MAILBOX_FULL, "mailbox full: " + std::to_string(m->envelopes) + " of " +
                                                                std::to_string(policy_.mailboxQuotaEnvelopes) +
                                                                " envelopes (quota)");
      return false;
    }
    RelayTotals t = s.readTotals(txn);
    if (t.bytes + freshBytes > policy_.diskCapBytes) {
      out.refusal = refusal(RelayRefusalKind::RELAY_FULL, "relay full: " + std::to_string(t.bytes) + " of " +
                                                              std::to_string(policy_.diskCapBytes) +
                                                              " bytes (the relay's disk cap)");
      return false;
    }
    for (const auto& [data, hash] : fresh) {
      uint64_t cursor = ++m->lastCursor;
      if (m->firstCursor == 0) m->firstCursor = cursor;
      Bytes value;
      value.reserve(ENVELOPE_HEADER_BYTES + data.size());
      putI64(value, at);
      value.insert(value.end(), data.begin(), data.end());
      s.envelopes.put(txn, envelopeKey(id, cursor), value);
      Bytes c;
      putU64(c, cursor);
      s.dedupe.put(txn, dedupeKey(id, hash), c);
    }
    m->envelopes += fresh.size();
    m->bytes += freshBytes;
    t.envelopes += fresh.size();
    t.bytes += freshBytes;
    s.mailboxes.put(txn, id, encodeMailbox(*m));
    s.writeTotals(txn, t);
    out.cursor = m->lastCursor;
    out.stored = static_cast<uint32_t>(fresh.size());
    return true;
  });
  return out;
}

GetOutcome RelayStore::get(const Key32& id, uint64_t after, size_t countMax, size_t bytesMax) const {
  GetOutcome out;
  out.cursor = after;
  ReadTxn txn(impl_->env);
  auto m = impl_->readMailbox(txn, id);
  if (!m) return out;
  out.found = true;
  out.closed = m->closed;
  if (after == UINT64_MAX || countMax == 0) return out;
  size_t bytes = 0;
  impl_->envelopes.scan(txn, id, envelopeKey(id, after + 1), [&](ByteView k, ByteView v) {
    if (v.size() < ENVELOPE_HEADER_BYTES) damaged("an envelope row shorter than its header");
    size_t size = v.size() - ENVELOPE_HEADER_BYTES;
    if (!out.envelopes.empty() && bytes + size > bytesMax) return false;
    StoredEnvelope e;
    e.cursor = getU64(k.data() + 32);
    e.receivedMs = getI64(v.data());
    e.data.assign(v.begin() + ENVELOPE_HEADER_BYTES, v.end());
    bytes += size;
    out.cursor = e.cursor;
    out.envelopes.push_back(std::move(e));
    return out.envelopes.size() < countMax;
  });
  return out;
}

SweepOutcome RelayStore::sweep() {
  SweepOutcome out;
  int64_t at = now();
  int64_t envelopesBefore = at - int64_t{policy_.retentionDays} * RELAY_DAY_MS;
  int64_t closedBefore = at - RELAY_CLOSED_KEEP_DAYS * RELAY_DAY_MS;
  // The mailboxes to look at, read once; each transaction then handles a bounded share of rows.
  std::vector<Key32> ids;
  {
    ReadTxn txn(impl_->env);
    impl_->mailboxes.scan(txn, {}, [&](ByteView k, ByteView) {
      if (k.size() == RELAY_MAILBOX_ID_BYTES) ids.push_back(key32At(k.data()));
      return true;
    });
  }
  size_t next = 0;
  while (next < ids.size()) {
    SweepOutcome batch;
    size_t stop = next;
    impl_->write([&](WriteTxn& txn) {
      Impl& s = *impl_;
      batch = SweepOutcome{};
      RelayTotals t = s.readTotals(txn);
      size_t rows = 0;
      size_t i = next;
      bool changed = false;
      for (; i < ids.size() && rows < RELAY_SWEEP_ROWS_PER_TXN; ++i) {
        auto m = s.readMailbox(txn, ids[i]);
        if (!m) continue;
        if (m->closed && m->closedMs < closedBefore) {
          uint64_t envelopes = m->envelopes;
          uint64_t bytes = m->bytes;
          s.deleteMailbox(txn, ids[i], *m, t);
          batch.mailboxesDeleted++;
          batch.envelopesDropped += envelopes;
          batch.bytesDropped += bytes;
          rows += 1 + envelopes;
          changed = true;
          continue;
        }
        if (m->envelopes == 0) continue;
        auto [count, bytes] = s.dropEnvelopes(txn, ids[i], *m, RELAY_SWEEP_ROWS_PER_TXN - rows, envelopesBefore);
        if (count == 0) continue;
        s.mailboxes.put(txn, ids[i], encodeMailbox(*m));
        t.envelopes -= std::min(t.envelopes, count);
        t.bytes -= std::min(t.bytes, bytes);
        batch.envelopesDropped += count;
        batch.bytesDropped += bytes;
        rows += count;
        changed = true;
        // This mailbox may have more to drop: stay on it in the next transaction.
        if (rows >= RELAY_SWEEP_ROWS_PER_TXN) break;
      }
      stop = i;
      if (!changed) return false;
      s.writeTotals(txn, t);
      return true;
    });
    out.envelopesDropped += batch.envelopesDropped;
    out.bytesDropped += batch.bytesDropped;
    out.mailboxesDeleted += batch.mailboxesDeleted;
    next = stop;
  }
  return out;
}

void RelayStore::addToken(ByteView token, uint32_t mailboxes) {
  KITH_ASSERT(token.size() == RELAY_TOKEN_BYTES);
  impl_->write([&](WriteTxn& txn) {
    Bytes record;
    putU32(record, mailboxes);
    putU32(record, 0);
    impl_->tokens.put(txn, tokenHash(token), record);
    return true;
  });
}

RelayTotals RelayStore::totals() const {
  ReadTxn txn(impl_->env);
  RelayTotals t = impl_->readTotals(txn);
  impl_->tokens.scan(txn, {}, [&](ByteView, ByteView) {
    t.tokens++;
    return true;
  });
  return t;
}

}  // namespace kith::store
