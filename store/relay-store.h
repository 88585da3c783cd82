// The relay's store (specs/relay.md, "The relay's store"): mailboxes, the envelopes put into them,
// the access tokens an operator issued, and the relay's totals, in an LMDB environment of its own
// in the relay's home (never a household's store).
//
// A relay is blind: it keeps only what its RPC carries (specs/relay.capnp): opaque 32-byte mailbox
// ids, the public halves of each mailbox's credential and admin key, opaque envelopes with the time
// they arrived, and the hashes of access tokens. Nothing here can name a journal, an author or a
// member.
//
// Byte layouts (all integers big-endian):
//   relay-meta  "schema"                 -> u32 RELAY_SCHEMA_VERSION
//               "totals"                 -> u64 mailboxes open || u64 mailboxes closed ||
//                                           u64 envelopes || u64 envelope bytes
//   mailboxes   id (32)                  -> credential (32) || admin (32) || token hash (32, zeros
//                                           on an open relay) || u8 status (0 open, 1 closed) ||
//                                           i64 createdMs || i64 closedMs (0 while open) ||
//                                           u64 envelopes || u64 bytes || u64 first cursor held (0:
//                                           none held) || u64 last cursor given (0: none yet)
//   envelopes   id (32) || u64 cursor    -> i64 receivedMs || the envelope's bytes
//   dedupe      id (32) || hash (32)     -> u64 cursor; hash = BLAKE2b-256("kith/relay-dedupe/v1"
//                                           0x00 || envelope)
//   tokens      hash (32)                -> u32 mailboxes allowed || u32 mailboxes created; hash =
//                                           BLAKE2b-256("kith/relay-token/v1" 0x00 || token)
// Cursors of a mailbox start at 1, increase by one per stored envelope and are never reused, even
// after retention dropped envelopes (the last cursor given stays in the mailbox's record).
//
// Threading: one RelayStore per process, used from one thread at a time. `kith relay status` and
// `kith relay token` may open the same environment beside a running `kith relay serve`.
// Caveats:
// - Refusals are values (RelayRefusal), not exceptions: a put, create or rotate that is refused
//   stores nothing. Exceptions are failures of the world: kith::Error(CORRUPT) for a damaged or
//   foreign store, (IO) for a failing disk. A full map is grown and the transaction run again.
// - Every write is one write transaction (one fsync): a put of many envelopes costs one.
// - Everything returned is an owned copy; nothing points into LMDB.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"

namespace kith::store {

constexpr unsigned RELAY_SCHEMA_VERSION = 1;
constexpr size_t RELAY_MAILBOX_ID_BYTES = 32;
constexpr size_t RELAY_TOKEN_BYTES = 32;
// A closed (rotated) mailbox keeps answering gets this long after it was closed, then it is
// deleted with its envelopes.
constexpr int64_t RELAY_CLOSED_KEEP_DAYS = 30;
constexpr int64_t RELAY_DAY_MS = int64_t{24} * 60 * 60 * 1000;
// Envelopes and mailboxes one sweep transaction drops at most; a sweep runs as many as it needs.
constexpr size_t RELAY_SWEEP_ROWS_PER_TXN = 20000;

enum class RelayAdmission : uint8_t { OPEN, TOKEN };
const char* admissionName(RelayAdmission admission);  // "open", "token"

// What the operator allows (relay.json; defaults in node/relay-limits.h).
struct RelayPolicy {
  RelayAdmission admission = RelayAdmission::OPEN;
  uint64_t mailboxQuotaBytes = 0;
  uint64_t mailboxQuotaEnvelopes = 0;
  uint64_t diskCapBytes = 0;  // the envelope bytes of all mailboxes together
  uint64_t mailboxesMax = 0;  // open mailboxes at once
  uint32_t retentionDays = 0;
};

// Why the relay refused a call. The text each kind is logged and answered with is refusalText's.
enum class RelayRefusalKind : uint8_t {
  NO_MAILBOX,      // unknown id (the server says the same for a bad proof)
  MAILBOX_EXISTS,  // create or rotate to an id held with other keys
  TOKEN_REQUIRED,  // a token relay, no token given
  TOKEN_UNKNOWN,   // a token this relay never issued
  TOKEN_USED_UP,   // the token's mailboxes were all created
  MAILBOXES_FULL,  // RelayPolicy::mailboxesMax open mailboxes already
  MAILBOX_CLOSED,  // a put into a rotated mailbox
  MAILBOX_FULL,    // the put would pass the mailbox's quota
  RELAY_FULL,      // the put would pass the disk cap
  COUNT
};
const char* refusalName(RelayRefusalKind kind);  // "mailbox_full", for status counters

struct RelayRefusal {
  RelayRefusalKind kind;
  std::string message;  // what the client is told, e.g. "mailbox full: 100 of 128 bytes (quota)"
};

struct MailboxRecord {
  Key32 credential{};
  Key32 admin{};
  Key32 tokenHash{};  // zeros on an open relay
  bool closed = false;
  int64_t createdMs = 0;
  int64_t closedMs = 0;
  uint64_t envelopes = 0;
  uint64_t bytes = 0;
  uint64_t firstCursor = 0;  // the oldest envelope held; 0 when none is
  uint64_t lastCursor = 0;   // the last cursor given; 0 before the first put
};

struct PutOutcome {
  std::optional<RelayRefusal> refusal;
  uint64_t cursor = 0;  // the mailbox's last cursor after the put
  uint32_t stored = 0;  // envelopes that were new
};

struct StoredEnvelope {
  uint64_t cursor = 0;
  int64_t receivedMs = 0;
  Bytes data;
};

struct GetOutcome {
  bool found = false;  // false: no such mailbox (the rest is empty)
  std::vector<StoredEnvelope> envelopes;
  uint64_t cursor = 0;  // the last cursor answered, `after` when none
  bool closed = false;
};

struct SweepOutcome {
  uint64_t envelopesDropped = 0;
  uint64_t bytesDropped = 0;
  uint64_t mailboxesDeleted = 0;
};

struct RelayTotals {
  uint64_t mailboxesOpen = 0;
  uint64_t mailboxesClosed = 0;
  uint64_t envelopes = 0;
  uint64_t bytes = 0;
  uint64_t tokens = 0;
};

struct RelayStoreOptions {
  bool create = false;             // make a new store in an empty folder (`kith relay init`)
  std::function<int64_t()> clock;  // milliseconds since the epoch; nowMs() when empty
};

class RelayStore {
public:
  // Opens the store in folder `dir`. Throws Error(CORRUPT) when it holds another program's LMDB
  // environment (a household's store included), a newer schema, or (without options.create) none.
  RelayStore(const std::string& dir, RelayPolicy policy, RelayStoreOptions options = {});
  ~RelayStore();
  RelayStore(const RelayStore&) = delete;
  RelayStore& operator=(const RelayStore&) = delete;

  const RelayPolicy& policy() const { return policy_; }

  // Opens mailbox `id`. Idempotent when it exists with the same credential and admin key (nothing
  // is consumed); MAILBOX_EXISTS with other keys. Admission: an open relay takes anyone (a token is
  // ignored); a token relay needs a token it issued with mailboxes left, and uses one of them.
  // MAILBOXES_FULL past policy.mailboxesMax open mailboxes.
  std::optional<RelayRefusal> create(const Key32& id, const Key32& credential, const Key32& admin, ByteView token);
  // Closes `id` and creates `newId` with `newCredential`, the same admin key and the same token
  // (no token mailbox is used: the open count does not change). A no-op for newId when it exists
  // with these keys already (a retried rotate); MAILBOX_EXISTS when it exists with others.
  // NO_MAILBOX when `id` does not exist. The caller checked the admin's proof.
  std::optional<RelayRefusal> rotate(const Key32& id, const Key32& newId, const Key32& newCredential);
  // Deletes the mailbox and its envelopes; false when there was none.
  bool remove(const Key32& id);
  std::optional<MailboxRecord> mailbox(const Key32& id) const;

  // Stores the envelopes not held yet (the same bytes are stored once per mailbox), in one
  // transaction. Refused, with nothing stored: NO_MAILBOX, MAILBOX_CLOSED, MAILBOX_FULL (bytes or
  // envelopes past the quota), RELAY_FULL (the disk cap). The caller checked sizes and counts.
  PutOutcome put(const Key32& id, const std::vector<ByteView>& envelopes);
  // The envelopes after cursor `after`, oldest first: at most `countMax`, and no more than
  // `bytesMax` bytes of data (but always one, when there is one).
  GetOutcome get(const Key32& id, uint64_t after, size_t countMax, size_t bytesMax) const;

  // Drops envelopes older than policy.retentionDays and deletes mailboxes closed more than
  // RELAY_CLOSED_KEEP_DAYS ago, in transactions of at most RELAY_SWEEP_ROWS_PER_TXN rows.
  SweepOutcome sweep();

  // Issues access token `token` (RELAY_TOKEN_BYTES, made by the caller) good for `mailboxes`
  // mailboxes; only its hash is stored.
  void addToken(ByteView token, uint32_t mailboxes);
  RelayTotals totals() const;

private:
  struct Impl;
  int64_t now() const;
  RelayPolicy policy_;
  std::function<int64_t()> clock_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kith::store
