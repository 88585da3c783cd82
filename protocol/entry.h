// The journal entry: building, signing, encrypting, decoding and verifying it. specs/entry.md is
// the normative description; specs/entry.capnp the schema.
//
// An Entry is immutable once signed. Its bytes (SignedEntry's `entry`) are Cap'n Proto's canonical
// encoding of the schema's Entry; its id is BLAKE2b-256("kith/entry-id/v1", those bytes); the
// signature covers "kith/entry/v1" || 0x00 || those bytes.
//
// Threading: pure functions over values; safe from any thread.
// Caveats:
// - decodeEntry (untrusted bytes) checks what one entry can show on its own (encoding, sizes, signature, a
//   genesis's journal id). The chain (seq, prev) and the author's role need the journal's state:
//   the store checks those on append.
// - openBody returns nullopt for a body that does not decrypt under the key given; it throws
//   EntryError when the body decrypts but is malformed or over the limits (a member misbehaving).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "crypto/aead.h"
#include "crypto/keys.h"
#include "protocol/limits.h"

namespace kith::protocol {

using crypto::PublicKey;
using crypto::Signature;
using JournalId = Key32;
using EntryId = Key32;

// Values match specs/entry.capnp.
enum class Role : uint8_t { SUBSCRIBER = 0, COAUTHOR = 1, OWNER = 2, RELAY = 3 };
enum class Kind : uint8_t {
  UPDATE = 0,
  COMMENT = 1,
  HEART = 2,
  JOURNAL_INFO = 3,
  RELAYS = 4,
  PROFILE = 5,   // the author's display name
  WISH = 6,      // a well-wish in the guestbook
  EDIT = 7,      // a new version of the author's own entry refs[0]
  DELETE = 8,    // the author deletes its own entry refs[0]
  ASK = 9,       // a help request
  CLAIM = 10,    // takes a slot of the request refs[0]
  UNCLAIM = 11,  // gives it back
  DONE = 12,     // the request refs[0] is done
  CANCEL = 13,   // the request refs[0] is cancelled
  CHUNK = 14,    // a piece of an attachment
};
constexpr Kind KIND_LAST = Kind::CHUNK;

const char* roleName(Role role);
std::optional<Role> tryParseRole(std::string_view name);
const char* kindName(Kind kind);
// Whether the kind names the entry it is about in refs[0] (a comment, a heart, an edit, a claim...).
bool kindRefers(Kind kind);

// Why an entry was refused. The store and the node log the reason with the entry's author and seq.
enum class Rejection {
  MALFORMED,        // not a canonical Entry, a field of the wrong length, an unknown version
  TOO_LARGE,        // over a limit of protocol/limits.h
  BAD_SIGNATURE,    // the signature does not verify under the author's key
  BAD_GENESIS,      // a journal's first entry that does not bind the journal id to its owner
  BROKEN_CHAIN,     // seq is not head + 1, or prev is not the id of the author's previous entry
  FORK,             // a second, different entry at an (author, seq) already stored
  UNKNOWN_JOURNAL,  // an entry of a journal this store does not hold
  UNAUTHORISED,     // the author's role does not allow this entry
  BAD_EPOCH,        // an epoch that does not exist (yet) in the journal
};
const char* rejectionName(Rejection r);

class EntryError : public Error {
public:
  EntryError(Rejection reason, const std::string& what)
      : Error(reason == Rejection::TOO_LARGE ? ErrorKind::INPUT : ErrorKind::CORRUPT, what), reason_(reason) {}
  Rejection reason() const { return reason_; }

private:
  Rejection reason_;
};

struct KeyWrap {
  PublicKey member{};
  uint32_t epoch = 0;
  Bytes sealed;  // crypto_box_seal of the 32-byte epoch key to the member's X25519 key
};

struct Control {
  enum class Type : uint8_t { NONE, CREATE, ADD_MEMBER, REMOVE_MEMBER };
  Type type = Type::NONE;
  Bytes salt;                    // CREATE
  PublicKey member{};            // ADD_MEMBER, REMOVE_MEMBER
  Role role = Role::SUBSCRIBER;  // ADD_MEMBER
  uint32_t newEpoch = 0;         // REMOVE_MEMBER
  uint64_t lastSeq = 0;          // REMOVE_MEMBER: the cut-off, the removed member's last seq (0: none)
  std::vector<KeyWrap> wraps;    // CREATE, ADD_MEMBER, REMOVE_MEMBER
};

// A relay a journal uses (Kind::RELAYS; specs/relay.md).
struct RelayAddress {
  std::string host;  // a numeric address or a DNS name (isInviteHostName's rule)
  uint16_t port = 0;
  PublicKey key{};
  bool operator==(const RelayAddress&) const = default;
};

// A file carried by an update, comment or edit; its bytes are in CHUNK entries (specs/entry.md,
// "Attachments").
struct Attachment {
  std::string name;  // the file's name, no folder
  std::string mime;
  uint64_t size = 0;
  Key32 hash{};                 // BLAKE2b-256("kith/attachment/v1", bytes)
  std::vector<EntryId> chunks;  // ceil(size / CHUNK_BYTES_MAX) chunk entry ids, in order
  bool operator==(const Attachment&) const = default;
};

struct Body {
  Kind kind = Kind::UPDATE;
  std::string text;
  std::vector<EntryId> refs;
  std::vector<RelayAddress> relays{};     // Kind::RELAYS only (at most RELAYS_MAX)
  bool heartOff = false;                  // Kind::HEART only
  int64_t whenMs = 0;                     // Kind::ASK only (0: not said)
  uint16_t slots = 0;                     // Kind::ASK only: 1 to SLOTS_MAX
  std::vector<Attachment> attachments{};  // UPDATE, COMMENT, EDIT only
  Bytes data{};                           // Kind::CHUNK only
};

// The hash an Attachment carries of its bytes.
Key32 attachmentHash(ByteView bytes);

// What an author fills in; sign() adds the signature and computes the id.
struct EntryDraft {
  JournalId journal{};
  uint64_t seq = 0;
  EntryId prev{};
  int64_t timestampMs = 0;
  uint32_t epoch = 0;
  Control control;
  std::optional<Body> body;  // encrypted under the epoch key given to sign()
};

// A decoded, signature-checked entry.
struct Entry {
  JournalId journal{};
  PublicKey author{};
  uint64_t seq = 0;
  EntryId prev{};
  int64_t timestampMs = 0;
  uint32_t epoch = 0;
  Control control;
  Bytes body;  // encrypted; empty when the entry carries no content
  Signature signature{};
  EntryId id{};
  Bytes bytes;  // the canonical Entry encoding (SignedEntry.entry)
};

constexpr size_t JOURNAL_SALT_BYTES = 16;

// The journal id of an owner's journal with this salt.
JournalId journalIdFor(const PublicKey& owner, ByteView salt);

// Encodes, encrypts the body with `epochKey` (required when the draft has a body) and signs.
// Throws EntryError(TOO_LARGE) when the result is over a limit (the text, or the whole entry).
Entry signEntry(const crypto::Identity& author, const EntryDraft& draft, std::optional<ByteView> epochKey);

// Parses and checks untrusted bytes (from the network, or stored bytes that must prove they are
// undamaged): the encoding, the limits, the signature and the values. `entryBytes` is
// SignedEntry.entry. Throws EntryError for anything that fails.
Entry decodeEntry(ByteView entryBytes, ByteView signature);

// Decrypts and decodes the body. nullopt when it does not decrypt under `epochKey`.
std::optional<Body> openBody(const Entry& entry, ByteView epochKey);

// The associated data that binds a body to its entry's position.
Bytes bodyAssociatedData(const JournalId& journal, const PublicKey& author, uint64_t seq, uint32_t epoch);

// A serialised SignedEntry (signature || entry bytes), as the store keeps it.
Bytes packEntry(const Entry& entry);
// decodeEntry of a packed entry: every check, the signature included. The store reads with it
// where damage at rest must show as a refusal (the timeline `kith read` shows, the integrity
// check).
Entry decodePackedEntry(ByteView packed);
// Unpacks what this node stored itself after decodeEntry (or signEntry) accepted it: the encoding,
// the limits and the values are checked, the signature is not (it was verified on the way in).
// Callers compare the entry with the key it was stored under, which the id and position cover.
// Throws EntryError(MALFORMED) for bytes that do not parse. specs/entry.md, "What is checked where".
Entry unpackEntry(ByteView packed);

}  // namespace kith::protocol
