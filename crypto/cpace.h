// CPace, the balanced password-authenticated key exchange of draft-irtf-cfrg-cpace, in its
// ristretto255 + SHA-512 cipher suite (G.DSI "CPaceRistretto255"), on libsodium. kith uses it to
// redeem a short invite code (specs/invite.md, "Short codes"): both sides know a few bytes of
// password, and each run lets a guesser test one guess only, against a live node that counts.
//
// The initiator/responder setting (transcript_ir): party A (the initiator) sends Ya with ADa, party
// B answers with Yb and ADb, and both derive
//   ISK = SHA-512(lv_cat("CPaceRistretto255_ISK", sid, K) || lv_cat(Ya, ADa) || lv_cat(Yb, ADb)).
// Checked byte for byte against the draft's published vectors (tests/crypto/vectors/cpace.json).
//
//   CPaceParty a = CPaceParty::initiator(prs, ci, sid, ada);   // sends a.share()
//   CPaceParty b = CPaceParty::responder(prs, ci, sid, adb);   // sends b.share()
//   auto iskA = a.finish(b.share(), adb);                      // nullopt: refuse the peer
//   auto iskB = b.finish(a.share(), ada);
//
// Key confirmation (the draft's section "Key confirmation"): macKey = SHA-512("CPaceMac" || sid ||
// ISK); each side sends HMAC-SHA-512(macKey, lv_cat(Y, AD)) of the share it sent, and checks the
// other's with a constant-time compare.
//
// Threading: a CPaceParty is a plain value; use one from one thread at a time.
//
// Caveats:
// - K is never exposed (a leaked K allows an offline dictionary attack); the scalar, K and the ISK
//   live in SecretBuffer (guarded memory), stack intermediates are wiped.
// - finish() refuses (nullopt) a peer share that does not decode as a ristretto255 element, or
//   whose product with our scalar is the identity (the draft's G.I abort).
// - A party is single use: finish() may be called once.
#pragma once
#include <sodium.h>

#include <initializer_list>
#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace kith::crypto {

constexpr size_t CPACE_POINT_BYTES = crypto_core_ristretto255_BYTES;
constexpr size_t CPACE_SCALAR_BYTES = crypto_core_ristretto255_SCALARBYTES;
constexpr size_t CPACE_ISK_BYTES = crypto_hash_sha512_BYTES;
constexpr size_t CPACE_MAC_BYTES = crypto_auth_hmacsha512_BYTES;
// SHA-512's input block size (H.s_in_bytes), which sets the generator string's zero padding.
constexpr size_t CPACE_HASH_BLOCK_BYTES = 128;
constexpr std::string_view CPACE_DSI = "CPaceRistretto255";
static_assert(CPACE_POINT_BYTES == 32 && CPACE_SCALAR_BYTES == 32);
static_assert(crypto_core_ristretto255_HASHBYTES == 64);

// The draft's string helpers: LEB128 length then the bytes; and the concatenation of several.
Bytes cpacePrependLen(ByteView data);
Bytes cpaceLvCat(std::initializer_list<ByteView> parts);
// generator_string(DSI, PRS, CI, sid, s_in_bytes), which contains the password: wipe it.
SecretBuffer cpaceGeneratorString(ByteView dsi, ByteView prs, ByteView ci, ByteView sid, size_t blockBytes);
// The encoded generator g for (PRS, CI, sid): element_derivation(SHA-512(generator_string)).
Key32 cpaceGenerator(ByteView prs, ByteView ci, ByteView sid);

class CPaceParty {
public:
  // A fresh random scalar (uniform in 1 .. order-1).
  static CPaceParty initiator(ByteView prs, ByteView ci, ByteView sid, ByteView ad);
  static CPaceParty responder(ByteView prs, ByteView ci, ByteView sid, ByteView ad);
  // With a given scalar (32 bytes, little-endian), for the known-answer tests only.
  static CPaceParty withScalar(bool initiator, ByteView prs, ByteView ci, ByteView sid, ByteView ad, ByteView scalar);

  // Our share (Ya or Yb), to send with our AD.
  const Key32& share() const { return share_; }
  // The ISK from the peer's share and AD, or nullopt when the share is invalid or gives the
  // identity (refuse the peer).
  std::optional<SecretBuffer> finish(ByteView peerShare, ByteView peerAd);
  // K of the last finish(), for the known-answer tests only (never sent, never logged).
  ByteView secretPointForTest() const { return k_.view(); }

  // Key confirmation: the MAC key of an ISK, our tag (over our share) and a check of the peer's
  // (over its share), constant-time.
  static SecretBuffer macKey(ByteView sid, ByteView isk);
  static Bytes tag(ByteView macKey, ByteView share, ByteView ad);
  [[nodiscard]] static bool checkTag(ByteView macKey, ByteView share, ByteView ad, ByteView tag);

private:
  CPaceParty(bool initiator, ByteView prs, ByteView ci, ByteView sid, ByteView ad, SecretBuffer scalar);

  bool initiator_;
  Bytes sid_;
  Bytes ad_;
  SecretBuffer scalar_;
  SecretBuffer k_;
  Key32 share_{};
  bool finished_ = false;
};

}  // namespace kith::crypto
