// Relays, the members' side of the cryptography (specs/relay.md): the keys of a journal's mailbox
// on one relay, derived from the epoch key so that only members can compute them; envelopes (a
// signed entry sealed again and padded to a few sizes); the proofs a client signs to open, rotate
// and remove a mailbox; and the messages of joining through a relay.
//
// Threading: pure functions over values; safe from any thread.
// Caveats:
// - A relay sees mailbox ids, credentials' and admin keys' public halves, envelopes and proofs.
//   None of these lets it compute the journal id, an author, a seq or a member key.
// - openEnvelope returns nullopt for anything not sealed under the key given (a relay's garbage,
//   another mailbox's envelope); the entry inside is still untrusted and goes through decodeEntry.
#pragma once
#include <optional>
#include <string_view>

#include "crypto/keys.h"
#include "protocol/entry.h"

namespace kith::protocol {

constexpr uint16_t RELAY_PROTOCOL_VERSION = 1;
constexpr size_t MAILBOX_ID_BYTES = 32;
// The padded sizes of an envelope's plaintext (u32 length || packed entry || zeros). The last one
// takes the largest entry (ENTRY_BYTES_MAX and its signature).
constexpr size_t ENVELOPE_BUCKETS[] = {512,  1024,  2048,  4096,
                                       8192, 16384, 32768, 4 + crypto::SIGNATURE_BYTES + ENTRY_BYTES_MAX};
constexpr size_t ENVELOPE_BUCKET_COUNT = sizeof ENVELOPE_BUCKETS / sizeof ENVELOPE_BUCKETS[0];
constexpr size_t ENVELOPE_BYTES_MAX = ENVELOPE_BUCKETS[ENVELOPE_BUCKET_COUNT - 1] + crypto::AEAD_OVERHEAD_BYTES;
constexpr size_t ENVELOPE_BYTES_MIN = ENVELOPE_BUCKETS[0] + crypto::AEAD_OVERHEAD_BYTES;

// What members know of one mailbox: its id (what the relay calls it), the key that seals its
// envelopes, and the credential whose public half the relay checks on `open`.
struct MailboxKeys {
  Key32 id{};
  crypto::SecretBuffer envelopeKey;
  crypto::Identity credential;
};

// The mailbox of `journal`'s epoch `epoch` on the relay whose key is `relay`, from that epoch's key.
// Another epoch or another relay gives unrelated keys.
MailboxKeys journalMailboxKeys(ByteView epochKey, const JournalId& journal, uint32_t epoch, const PublicKey& relay);
// The mailbox through which an invite is redeemed on `relay`, from the invite's id
// (protocol::inviteId of its secret: known to the owner's node and to whoever holds the code).
MailboxKeys inviteMailboxKeys(const Key32& inviteId, const PublicKey& relay);
// The owner's admin key for a mailbox `scope` (a journal id, or an invite id) on `relay`: derived
// from the owner's identity, so that only the owner's node can rotate or remove it.
crypto::Identity relayAdminKey(const crypto::Identity& owner, const Key32& scope, const PublicKey& relay);

// What a proof signs: "kith/relay-proof/v1" 0x00 || action 0x00 || relay key || the client's
// transport key for this connection || subject. Binding the transport key makes a proof good for
// one connection only.
enum class RelayAction { OPEN, ROTATE, REMOVE };
Bytes relayProofMessage(RelayAction action, const PublicKey& relay, const PublicKey& client, ByteView subject);

// Seals a packed entry (signature || entry bytes) into an envelope: padded to the smallest bucket
// that holds it, encrypted under `envelopeKey` with a nonce derived from the key and the padded
// plaintext, so that the same entry sealed twice is the same envelope (the relay stores it once).
// Throws EntryError(TOO_LARGE) when no bucket holds it.
Bytes sealEnvelope(ByteView envelopeKey, ByteView packed);
// The packed entry inside, or nullopt when the envelope does not open under the key or its padding
// is malformed.
std::optional<Bytes> openEnvelope(ByteView envelopeKey, ByteView envelope);

// Joining through a relay (specs/relay.md, "Joining"): the friend's request and the owner's answer,
// each one envelope of the invite's mailbox (sealed with sealEnvelope's padding, but carrying these
// messages instead of an entry).
struct RedeemRequest {
  Bytes secret;                   // the invite's secret (INVITE_SECRET_BYTES)
  PublicKey member{};             // who is to be added
  crypto::Signature signature{};  // by `member` over redeemRequestMessage(secret, member)
};
struct RedeemAnswer {
  PublicKey member{};  // whom this answers
  bool ok = false;
  std::string reason;  // when not ok: why ("the invite was used already", ...)
  JournalId journal{};
  Role role = Role::SUBSCRIBER;
  uint32_t epoch = 0;
  Bytes sealedEpochKey;  // the current epoch key, crypto_box_seal'ed to the member's X25519 key
};
Bytes redeemRequestMessage(ByteView secret, const PublicKey& member);
RedeemRequest makeRedeemRequest(const crypto::Identity& member, ByteView secret);
Bytes encodeRedeemRequest(const RedeemRequest& request);
// nullopt for malformed bytes or a signature that does not verify.
std::optional<RedeemRequest> decodeRedeemRequest(ByteView bytes);
Bytes encodeRedeemAnswer(const RedeemAnswer& answer);
std::optional<RedeemAnswer> decodeRedeemAnswer(ByteView bytes);
// The envelope of a message (not an entry): as sealEnvelope, with a one-byte type in front so that
// requests and answers are told apart.
Bytes sealMessage(ByteView envelopeKey, uint8_t type, ByteView message);
std::optional<std::pair<uint8_t, Bytes>> openMessage(ByteView envelopeKey, ByteView envelope);
constexpr uint8_t MESSAGE_REDEEM_REQUEST = 1;
constexpr uint8_t MESSAGE_REDEEM_ANSWER = 2;

}  // namespace kith::protocol
