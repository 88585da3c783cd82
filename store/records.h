// Internal to store/: the byte layouts of the store's tables, one place for every key and record
// encoding. Nothing outside store/ includes this header.
//
// Tables (all keys and integers big-endian, so that LMDB's byte order is numeric order):
//   meta      "schema"                              -> schema version u32
//   journals  journal(32)                           -> JournalRecord (owner, epoch, counts)
//   entries   journal(32) | author(32) | seq u64    -> signature(64) | canonical entry bytes
//   ids       entry id(32)                          -> the entry's key in `entries`
//   heads     journal(32) | author(32)              -> seq u64 | entry id(32)
//   timeline  journal(32) | ordered time u64 | id   -> author(32) | seq u64
//   members   journal(32) | member(32)              -> tenures u8 | n x (role u8 | since epoch u32 |
//                                                     closed u8 | cut-off seq u64)
//   epochs    journal(32) | epoch u32               -> the epoch key, sealed (epoch-keys.cpp)
//   forks     entry key | entry id(32)              -> the refused second entry, packed
//   invites   invite id(32)                         -> invite record (invites.cpp)
// Caveats:
// - decode* throw Error(CORRUPT) for a record of the wrong shape: the store is damaged.
#pragma once
#include <initializer_list>
#include <string_view>

#include "store/store.h"

namespace kith::store::internal {

inline const Bytes SCHEMA_KEY = {'s', 'c', 'h', 'e', 'm', 'a'};
constexpr size_t KEY_BYTES = 32;
constexpr size_t SEQ_BYTES = 8;
constexpr size_t EPOCH_BYTES = 4;
constexpr size_t SCHEMA_VALUE_BYTES = 4;
constexpr size_t JOURNAL_RECORD_BYTES = KEY_BYTES + 4 + 8 + 8 + 8;
constexpr size_t MEMBER_KEY_BYTES = KEY_BYTES + KEY_BYTES;
constexpr size_t TENURE_RECORD_BYTES = 1 + 4 + 1 + 8;
constexpr size_t ENTRY_KEY_BYTES = KEY_BYTES + KEY_BYTES + SEQ_BYTES;
constexpr size_t TIMELINE_KEY_BYTES = KEY_BYTES + 8 + KEY_BYTES;
constexpr size_t TIMELINE_VALUE_BYTES = KEY_BYTES + SEQ_BYTES;
constexpr size_t HEAD_KEY_BYTES = KEY_BYTES + KEY_BYTES;
constexpr size_t HEAD_VALUE_BYTES = SEQ_BYTES + KEY_BYTES;
constexpr size_t EPOCH_KEY_ROW_BYTES = KEY_BYTES + EPOCH_BYTES;
constexpr size_t EPOCH_KEY_RECORD_BYTES = crypto::AEAD_OVERHEAD_BYTES + crypto::AEAD_KEY_BYTES;
constexpr size_t FORK_KEY_BYTES = ENTRY_KEY_BYTES + KEY_BYTES;
// journal(32) | role u8 | created i64 | expires i64 | used u8 | usedBy(32)
constexpr size_t INVITE_RECORD_BYTES = KEY_BYTES + 1 + 8 + 8 + 1 + KEY_BYTES;
// Then, optionally (records written since short codes): label length u8 | label | hasShort u8 |
// with a short code: slot u8 | password(4) | secret(10) | failures u8.
constexpr size_t INVITE_SHORT_RECORD_BYTES = 1 + 4 + 10 + 1;

Bytes cat(std::initializer_list<ByteView> parts);
Bytes u64(uint64_t v);
Bytes u32(uint32_t v);
Key32 key32At(const uint8_t* p);
bool isZero(const Key32& k);
// Whether the key's lower-case hex starts with `hexPrefix` (in either case).
bool hexPrefixMatches(const Key32& key, std::string_view hexPrefix);
std::string shortId(const Key32& id, size_t chars = 12);

// Timestamps are signed; flipping the top bit makes big-endian byte order match numeric order.
uint64_t orderedTime(int64_t ms);
int64_t timeFromOrdered(uint64_t ordered);

Bytes entryKey(const JournalId& j, const PublicKey& a, uint64_t seq);
Bytes headKey(const JournalId& j, const PublicKey& a);
Bytes memberKey(const JournalId& j, const PublicKey& m);
Bytes epochKeyRow(const JournalId& j, uint32_t epoch);
Bytes timelineKey(const JournalId& j, int64_t timestampMs, const EntryId& id);
Bytes forkKey(const Entry& e);

struct JournalRecord {
  PublicKey owner{};
  uint32_t epoch = 0;
  int64_t createdMs = 0;
  int64_t lastEntryMs = 0;
  uint64_t entryCount = 0;

  Bytes encode() const;
  static JournalRecord decode(ByteView b);
  JournalInfo info(const JournalId& id) const;
};

Bytes encodeHead(const Head& h);
Head decodeHead(ByteView b);

Bytes encodeMember(const Member& m);
Member decodeMember(const PublicKey& key, ByteView b);

// Whether a sealed epoch key opens under `storageKey` (store/epoch-keys.cpp).
bool epochKeyOpens(ByteView sealed, const JournalId& j, uint32_t epoch, ByteView storageKey);

Bytes encodeInvite(const Invite& i);
Invite decodeInvite(ByteView key, ByteView v);

}  // namespace kith::store::internal
