#include "protocol/relay.h"

#include <algorithm>

#include "crypto/aead.h"
#include "crypto/hash.h"
#include "protocol/invite.h"

namespace kith::protocol {

namespace {

constexpr std::string_view MAILBOX_DOMAIN = "kith/relay-mailbox/v1";
constexpr std::string_view INVITE_MAILBOX_DOMAIN = "kith/relay-invite-mailbox/v1";
constexpr std::string_view ADMIN_DOMAIN = "kith/relay-admin/v1";
constexpr std::string_view PROOF_DOMAIN = "kith/relay-proof/v1";
constexpr std::string_view ENVELOPE_AD = "kith/relay-envelope/v1";
constexpr std::string_view REDEEM_DOMAIN = "kith/relay-redeem/v1";

MailboxKeys keysFrom(const crypto::SecretBuffer& base) {
  ByteView b = base.view();
  Key32 id;
  crypto::SecretBuffer idBytes = crypto::keyedHash(b, "id", {});
  std::copy(idBytes.data(), idBytes.data() + id.size(), id.begin());
  crypto::SecretBuffer seed = crypto::keyedHash(b, "credential", {});
  return MailboxKeys{id, crypto::keyedHash(b, "envelope", {}), crypto::Identity::fromSeed(seed.view())};
}

size_t bucketFor(size_t bytes) {
  for (size_t b : ENVELOPE_BUCKETS) {
    if (bytes <= b) return b;
  }
  return 0;
}

Bytes pad(ByteView content) {
  size_t bucket = bucketFor(4 + content.size());
  if (bucket == 0) throw EntryError(Rejection::TOO_LARGE, "an entry too large for an envelope");
  Bytes plain;
  plain.reserve(bucket);
  putU32(plain, static_cast<uint32_t>(content.size()));
  plain.insert(plain.end(), content.begin(), content.end());
  plain.resize(bucket, 0);
  return plain;
}

Bytes sealPadded(ByteView envelopeKey, const Bytes& plain) {
  // The nonce is derived from the key and the padded plaintext (a synthetic nonce): one entry gives
  // one envelope however often and by whomever it is sealed, and two plaintexts never share one.
  Key32 nonce = crypto::keyedHashPublic(envelopeKey, "kith/relay-envelope-nonce/v1", {plain});
  return crypto::aeadSealWithNonce(envelopeKey, ByteView(nonce).first(crypto::AEAD_NONCE_BYTES), plain,
                                   asBytes(ENVELOPE_AD));
}

std::optional<Bytes> unpad(ByteView envelopeKey, ByteView envelope) {
  if (envelope.size() < ENVELOPE_BYTES_MIN || envelope.size() > ENVELOPE_BYTES_MAX) return std::nullopt;
  if (bucketFor(envelope.size() - crypto::AEAD_OVERHEAD_BYTES) != envelope.size() - crypto::AEAD_OVERHEAD_BYTES) {
    return std::nullopt;
  }
  std::optional<Bytes> plain = crypto::aeadOpen(envelopeKey, envelope, asBytes(ENVELOPE_AD));
  if (!plain) return std::nullopt;
  uint32_t length = getU32(plain->data());
  if (length > plain->size() - 4) return std::nullopt;
  if (!std::all_of(plain->begin() + 4 + length, plain->end(), [](uint8_t b) { return b == 0; })) return std::nullopt;
  return Bytes(plain->begin() + 4, plain->begin() + 4 + length);
}

}  // namespace

MailboxKeys journalMailboxKeys(ByteView epochKey, const JournalId& journal, uint32_t epoch, const PublicKey& relay) {
  Bytes epochBytes;
  putU32(epochBytes, epoch);
  return keysFrom(crypto::keyedHash(epochKey, MAILBOX_DOMAIN, {journal, epochBytes, relay}));
}

MailboxKeys inviteMailboxKeys(const Key32& inviteId, const PublicKey& relay) {
  return keysFrom(crypto::keyedHash(inviteId, INVITE_MAILBOX_DOMAIN, {relay}));
}

crypto::Identity relayAdminKey(const crypto::Identity& owner, const Key32& scope, const PublicKey& relay) {
  crypto::SecretBuffer root = owner.deriveKey("kithrlay", 1);
  crypto::SecretBuffer seed = crypto::keyedHash(root.view(), ADMIN_DOMAIN, {scope, relay});
  return crypto::Identity::fromSeed(seed.view());
}

Bytes relayProofMessage(RelayAction action, const PublicKey& relay, const PublicKey& client, ByteView subject) {
  std::string_view name = action == RelayAction::OPEN ? "open" : action == RelayAction::ROTATE ? "rotate" : "remove";
  Bytes out(PROOF_DOMAIN.begin(), PROOF_DOMAIN.end());
  out.push_back(0);
  out.insert(out.end(), name.begin(), name.end());
  out.push_back(0);
  out.insert(out.end(), relay.begin(), relay.end());
  out.insert(out.end(), client.begin(), client.end());
  out.insert(out.end(), subject.begin(), subject.end());
  return out;
}

Bytes sealEnvelope(ByteView envelopeKey, ByteView packed) { return sealPadded(envelopeKey, pad(packed)); }

std::optional<Bytes> openEnvelope(ByteView envelopeKey, ByteView envelope) { return unpad(envelopeKey, envelope); }

Bytes sealMessage(ByteView envelopeKey, uint8_t type, ByteView message) {
  Bytes content;
  content.reserve(1 + message.size());
  content.push_back(type);
  content.insert(content.end(), message.begin(), message.end());
  return sealPadded(envelopeKey, pad(content));
}

std::optional<std::pair<uint8_t, Bytes>> openMessage(ByteView envelopeKey, ByteView envelope) {
  std::optional<Bytes> content = unpad(envelopeKey, envelope);
  if (!content || content->empty()) return std::nullopt;
  return std::make_pair((*content)[0], Bytes(content->begin() + 1, content->end()));
}

Bytes redeemRequestMessage(ByteView secret, const PublicKey& member) {
  Bytes out(REDEEM_DOMAIN.begin(), REDEEM_DOMAIN.end());
  out.push_back(0);
  out.insert(out.end(), secret.begin(), secret.end());
  out.insert(out.end(), member.begin(), member.end());
  return out;
}

RedeemRequest makeRedeemRequest(const crypto::Identity& member, ByteView secret) {
  RedeemRequest r;
  r.secret.assign(secret.begin(), secret.end());
  r.member = member.publicKey();
  r.signature = member.sign(redeemRequestMessage(secret, r.member));
  return r;
}

Bytes encodeRedeemRequest(const RedeemRequest& request) {
  KITH_ASSERT(request.secret.size() == INVITE_SECRET_BYTES);
  Bytes out(request.secret);
  out.insert(out.end(), request.member.begin(), request.member.end());
  out.insert(out.end(), request.signature.begin(), request.signature.end());
  return out;
}

std::optional<RedeemRequest> decodeRedeemRequest(ByteView bytes) {
  if (bytes.size() != INVITE_SECRET_BYTES + crypto::PUBLIC_KEY_BYTES + crypto::SIGNATURE_BYTES) return std::nullopt;
  RedeemRequest r;
  r.secret.assign(bytes.begin(), bytes.begin() + INVITE_SECRET_BYTES);
  std::copy_n(bytes.begin() + INVITE_SECRET_BYTES, r.member.size(), r.member.begin());
  std::copy_n(bytes.begin() + INVITE_SECRET_BYTES + r.member.size(), r.signature.size(), r.signature.begin());
  if (!crypto::verify(r.member, redeemRequestMessage(r.secret, r.member), r.signature)) return std::nullopt;
  return r;
}

namespace {
constexpr size_t REDEEM_REASON_BYTES_MAX = 200;
constexpr size_t SEALED_EPOCH_KEY_BYTES = 32 + crypto::SEALED_BOX_OVERHEAD_BYTES;
}  // namespace

Bytes encodeRedeemAnswer(const RedeemAnswer& answer) {
  Bytes out(answer.member.begin(), answer.member.end());
  out.push_back(answer.ok ? 1 : 0);
  if (answer.ok) {
    KITH_ASSERT(answer.sealedEpochKey.size() == SEALED_EPOCH_KEY_BYTES);
    out.insert(out.end(), answer.journal.begin(), answer.journal.end());
    out.push_back(static_cast<uint8_t>(answer.role));
    putU32(out, answer.epoch);
    out.insert(out.end(), answer.sealedEpochKey.begin(), answer.sealedEpochKey.end());
  } else {
    std::string reason = answer.reason.substr(0, REDEEM_REASON_BYTES_MAX);
    out.insert(out.end(), reason.begin(), reason.end());
  }
  return out;
}

std::optional<RedeemAnswer> decodeRedeemAnswer(ByteView bytes) {
  if (bytes.size() < 33) return std::nullopt;
  RedeemAnswer a;
  std::copy_n(bytes.begin(), a.member.size(), a.member.begin());
  uint8_t ok = bytes[32];
  ByteView rest = bytes.subspan(33);
  if (ok == 0) {
    if (rest.size() > REDEEM_REASON_BYTES_MAX) return std::nullopt;
    a.reason.assign(rest.begin(), rest.end());
    for (char c : a.reason) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
    }
    return a;
  }
  if (ok != 1 || rest.size() != 32 + 1 + 4 + SEALED_EPOCH_KEY_BYTES) return std::nullopt;
  a.ok = true;
  std::copy_n(rest.begin(), a.journal.size(), a.journal.begin());
  uint8_t role = rest[32];
  if (role > static_cast<uint8_t>(Role::COAUTHOR)) return std::nullopt;  // an invite grants these only
  a.role = static_cast<Role>(role);
  a.epoch = getU32(rest.data() + 33);
  a.sealedEpochKey.assign(rest.begin() + 37, rest.end());
  return a;
}

}  // namespace kith::protocol
