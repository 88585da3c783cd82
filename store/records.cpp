#include "store/records.h"

#include <sodium.h>

#include <cctype>
#include <cstring>

namespace kith::store::internal {

namespace {
constexpr uint64_t TIME_ORDER_BIT = uint64_t{1} << 63;
}  // namespace

Bytes cat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes u64(uint64_t v) {
  Bytes b;
  putU64(b, v);
  return b;
}
Bytes u32(uint32_t v) {
  Bytes b;
  putU32(b, v);
  return b;
}
Key32 key32At(const uint8_t* p) {
  Key32 k;
  std::memcpy(k.data(), p, KEY_BYTES);
  return k;
}
bool isZero(const Key32& k) { return sodium_is_zero(k.data(), k.size()) == 1; }

bool hexPrefixMatches(const Key32& key, std::string_view hexPrefix) {
  std::string hex = toHex(key);
  if (hexPrefix.size() > hex.size()) return false;
  for (size_t i = 0; i < hexPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(hexPrefix[i])) != hex[i]) return false;
  }
  return true;
}

std::string shortId(const Key32& id, size_t chars) { return toHex(id).substr(0, chars); }

uint64_t orderedTime(int64_t ms) { return static_cast<uint64_t>(ms) ^ TIME_ORDER_BIT; }
int64_t timeFromOrdered(uint64_t ordered) { return static_cast<int64_t>(ordered ^ TIME_ORDER_BIT); }

Bytes entryKey(const JournalId& j, const PublicKey& a, uint64_t seq) { return cat({j, a, u64(seq)}); }
Bytes headKey(const JournalId& j, const PublicKey& a) { return cat({j, a}); }
Bytes memberKey(const JournalId& j, const PublicKey& m) { return cat({j, m}); }
Bytes epochKeyRow(const JournalId& j, uint32_t epoch) { return cat({j, u32(epoch)}); }
Bytes timelineKey(const JournalId& j, int64_t timestampMs, const EntryId& id) {
  return cat({j, u64(orderedTime(timestampMs)), id});
}
Bytes forkKey(const Entry& e) { return cat({entryKey(e.journal, e.author, e.seq), e.id}); }

Bytes JournalRecord::encode() const {
  Bytes b(owner.begin(), owner.end());
  putU32(b, epoch);
  putU64(b, static_cast<uint64_t>(createdMs));
  putU64(b, static_cast<uint64_t>(lastEntryMs));
  putU64(b, entryCount);
  return b;
}

JournalRecord JournalRecord::decode(ByteView b) {
  if (b.size() != JOURNAL_RECORD_BYTES) {
    throw Error(ErrorKind::CORRUPT, "the store's journal table is damaged", HINT_RESTORE_STORE);
  }
  JournalRecord r;
  r.owner = key32At(b.data());
  r.epoch = getU32(b.data() + 32);
  r.createdMs = static_cast<int64_t>(getU64(b.data() + 36));
  r.lastEntryMs = static_cast<int64_t>(getU64(b.data() + 44));
  r.entryCount = getU64(b.data() + 52);
  return r;
}

JournalInfo JournalRecord::info(const JournalId& id) const {
  return JournalInfo{id, owner, epoch, createdMs, lastEntryMs, entryCount};
}

Bytes encodeHead(const Head& h) {
  Bytes b = u64(h.seq);
  b.insert(b.end(), h.id.begin(), h.id.end());
  return b;
}

Head decodeHead(ByteView b) {
  if (b.size() != HEAD_VALUE_BYTES) throw Error(ErrorKind::CORRUPT, "the store's head table is damaged");
  return Head{getU64(b.data()), key32At(b.data() + SEQ_BYTES)};
}

Bytes encodeMember(const Member& m) {
  KITH_ASSERT(!m.tenures.empty());
  KITH_ASSERT(m.tenures.size() <= protocol::MEMBER_TENURES_MAX);
  Bytes b{static_cast<uint8_t>(m.tenures.size())};
  for (const auto& t : m.tenures) {
    b.push_back(static_cast<uint8_t>(t.role));
    putU32(b, t.sinceEpoch);
    b.push_back(t.lastSeq ? 1 : 0);
    putU64(b, t.lastSeq.value_or(0));
  }
  return b;
}

Member decodeMember(const PublicKey& key, ByteView b) {
  auto damaged = [] { return Error(ErrorKind::CORRUPT, "the store's member table is damaged", HINT_RESTORE_STORE); };
  if (b.empty() || b[0] == 0 || b[0] > protocol::MEMBER_TENURES_MAX || b.size() != 1 + b[0] * TENURE_RECORD_BYTES) {
    throw damaged();
  }
  Member m;
  m.key = key;
  for (size_t i = 0; i < b[0]; ++i) {
    const uint8_t* p = b.data() + 1 + i * TENURE_RECORD_BYTES;
    bool closed = p[5] == 1;
    if (p[0] > static_cast<uint8_t>(Role::RELAY) || p[5] > 1 || (!closed && i + 1 != b[0])) throw damaged();
    protocol::Tenure t{static_cast<Role>(p[0]), getU32(p + 1), std::nullopt};
    if (closed) t.lastSeq = getU64(p + 6);
    m.tenures.push_back(t);
  }
  const protocol::Tenure& last = m.tenures.back();
  m.role = last.role;
  m.active = !last.lastSeq.has_value();
  m.sinceEpoch = last.sinceEpoch;
  return m;
}

Bytes encodeInvite(const Invite& i) {
  Bytes b(i.journal.begin(), i.journal.end());
  b.push_back(static_cast<uint8_t>(i.role));
  putU64(b, static_cast<uint64_t>(i.createdMs));
  putU64(b, static_cast<uint64_t>(i.expiresMs));
  b.push_back(i.used ? 1 : 0);
  b.insert(b.end(), i.usedBy.begin(), i.usedBy.end());
  KITH_ASSERT(i.label.size() <= INVITE_LABEL_BYTES_MAX);
  b.push_back(static_cast<uint8_t>(i.label.size()));
  b.insert(b.end(), i.label.begin(), i.label.end());
  b.push_back(i.hasShort ? 1 : 0);
  if (i.hasShort) {
    KITH_ASSERT(i.password.size() == protocol::INVITE_SHORT_PASSWORD_BYTES);
    KITH_ASSERT(i.secret.size() == protocol::INVITE_SECRET_BYTES);
    b.push_back(i.slot);
    b.insert(b.end(), i.password.begin(), i.password.end());
    b.insert(b.end(), i.secret.begin(), i.secret.end());
    b.push_back(i.shortFailures);
  }
  return b;
}

Invite decodeInvite(ByteView key, ByteView v) {
  auto damaged = [] {
    return Error(ErrorKind::CORRUPT, "the store's invite table is damaged", "cancel the invites and make new ones");
  };
  if (key.size() != KEY_BYTES || v.size() < INVITE_RECORD_BYTES || v[32] > static_cast<uint8_t>(Role::RELAY)) {
    throw damaged();
  }
  Invite i;
  i.id = key32At(key.data());
  i.journal = key32At(v.data());
  i.role = static_cast<Role>(v[32]);
  i.createdMs = static_cast<int64_t>(getU64(v.data() + 33));
  i.expiresMs = static_cast<int64_t>(getU64(v.data() + 41));
  i.used = v[49] != 0;
  i.usedBy = key32At(v.data() + 50);
  size_t pos = INVITE_RECORD_BYTES;
  if (pos == v.size()) return i;  // a record from before labels and short codes
  size_t labelBytes = v[pos++];
  if (labelBytes > INVITE_LABEL_BYTES_MAX || pos + labelBytes + 1 > v.size()) throw damaged();
  i.label.assign(reinterpret_cast<const char*>(v.data() + pos), labelBytes);
  pos += labelBytes;
  i.hasShort = v[pos++] != 0;
  if (i.hasShort) {
    if (pos + INVITE_SHORT_RECORD_BYTES != v.size()) throw damaged();
    i.slot = v[pos++];
    i.password.assign(v.begin() + static_cast<std::ptrdiff_t>(pos),
                      v.begin() + static_cast<std::ptrdiff_t>(pos + protocol::INVITE_SHORT_PASSWORD_BYTES));
    pos += protocol::INVITE_SHORT_PASSWORD_BYTES;
    i.secret.assign(v.begin() + static_cast<std::ptrdiff_t>(pos),
                    v.begin() + static_cast<std::ptrdiff_t>(pos + protocol::INVITE_SECRET_BYTES));
    pos += protocol::INVITE_SECRET_BYTES;
    i.shortFailures = v[pos++];
  }
  if (pos != v.size()) throw damaged();
  return i;
}

}  // namespace kith::store::internal
