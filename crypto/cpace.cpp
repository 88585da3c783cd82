// CPace over ristretto255 with SHA-512 (crypto/cpace.h), following draft-irtf-cfrg-cpace's
// section "CPace group objects G_Ristretto255 and G_Decaf448" and its appendix of string helpers.
#include "crypto/cpace.h"

#include <cstring>

#include "base/error.h"

namespace kith::crypto {
namespace {

constexpr std::string_view ISK_SUFFIX = "_ISK";
constexpr std::string_view MAC_DOMAIN = "CPaceMac";
// LEB128 of a length below 2^63 takes at most 10 bytes.
constexpr size_t LEB128_BYTES_MAX = 10;

size_t lebLength(size_t n, uint8_t* out) {
  size_t used = 0;
  do {
    uint8_t byte = n & 0x7f;
    n >>= 7;
    if (n != 0) byte |= 0x80;
    out[used++] = byte;
  } while (n != 0);
  return used;
}

void appendLv(Bytes& out, ByteView part) {
  uint8_t len[LEB128_BYTES_MAX];
  size_t used = lebLength(part.size(), len);
  out.insert(out.end(), len, len + used);
  out.insert(out.end(), part.begin(), part.end());
}

SecretBuffer randomScalar() {
  SecretBuffer scalar(CPACE_SCALAR_BYTES);
  crypto_core_ristretto255_scalar_random(scalar.data());
  return scalar;
}

}  // namespace

Bytes cpacePrependLen(ByteView data) {
  Bytes out;
  appendLv(out, data);
  return out;
}

Bytes cpaceLvCat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView part : parts) appendLv(out, part);
  return out;
}

SecretBuffer cpaceGeneratorString(ByteView dsi, ByteView prs, ByteView ci, ByteView sid, size_t blockBytes) {
  // Zero padding fills the first hash block after DSI and PRS (the draft's len_zpad).
  // (prepend_len(PRS)'s length is counted without copying the password.)
  uint8_t len[LEB128_BYTES_MAX];
  size_t head = cpacePrependLen(dsi).size() + lebLength(prs.size(), len) + prs.size();
  size_t zpad = blockBytes > head + 1 ? blockBytes - 1 - head : 0;
  Bytes zeros(zpad, 0);
  // Assembled in guarded memory: it holds the password.
  size_t total = head + lebLength(zpad, len) + zpad;
  total += lebLength(ci.size(), len) + ci.size() + lebLength(sid.size(), len) + sid.size();
  SecretBuffer out(total);
  size_t at = 0;
  for (ByteView part : {dsi, prs, ByteView(zeros), ci, sid}) {
    at += lebLength(part.size(), out.data() + at);
    if (!part.empty()) std::memcpy(out.data() + at, part.data(), part.size());
    at += part.size();
  }
  KITH_ASSERT(at == total);
  return out;
}

Key32 cpaceGenerator(ByteView prs, ByteView ci, ByteView sid) {
  SecretBuffer genStr = cpaceGeneratorString(asBytes(CPACE_DSI), prs, ci, sid, CPACE_HASH_BLOCK_BYTES);
  SecretBuffer digest(crypto_hash_sha512_BYTES);
  crypto_hash_sha512(digest.data(), genStr.data(), genStr.size());
  Key32 g{};
  crypto_core_ristretto255_from_hash(g.data(), digest.data());
  return g;
}

CPaceParty::CPaceParty(bool initiator, ByteView prs, ByteView ci, ByteView sid, ByteView ad, SecretBuffer scalar)
    : initiator_(initiator), sid_(sid.begin(), sid.end()), ad_(ad.begin(), ad.end()), scalar_(std::move(scalar)) {
  KITH_ASSERT(scalar_.size() == CPACE_SCALAR_BYTES);
  Key32 g = cpaceGenerator(prs, ci, sid);
  // Fails only for a zero scalar (the identity), which sampling never gives.
  KITH_ASSERT(crypto_scalarmult_ristretto255(share_.data(), scalar_.data(), g.data()) == 0);
}

CPaceParty CPaceParty::initiator(ByteView prs, ByteView ci, ByteView sid, ByteView ad) {
  return CPaceParty(true, prs, ci, sid, ad, randomScalar());
}

CPaceParty CPaceParty::responder(ByteView prs, ByteView ci, ByteView sid, ByteView ad) {
  return CPaceParty(false, prs, ci, sid, ad, randomScalar());
}

CPaceParty CPaceParty::withScalar(bool initiator, ByteView prs, ByteView ci, ByteView sid, ByteView ad,
                                  ByteView scalar) {
  KITH_ASSERT(scalar.size() == CPACE_SCALAR_BYTES);
  return CPaceParty(initiator, prs, ci, sid, ad, SecretBuffer::copyOf(scalar));
}

std::optional<SecretBuffer> CPaceParty::finish(ByteView peerShare, ByteView peerAd) {
  KITH_ASSERT(!finished_);
  finished_ = true;
  if (peerShare.size() != CPACE_POINT_BYTES) return std::nullopt;
  // scalar_mult_vfy: libsodium refuses an encoding that does not decode (non-canonical, not on
  // the curve) and a result that is the identity, both with -1: the draft's abort on G.I.
  SecretBuffer k(CPACE_POINT_BYTES);
  if (crypto_scalarmult_ristretto255(k.data(), scalar_.data(), peerShare.data()) != 0) return std::nullopt;
  ByteView ya = initiator_ ? ByteView(share_) : peerShare;
  ByteView ada = initiator_ ? ByteView(ad_) : peerAd;
  ByteView yb = initiator_ ? peerShare : ByteView(share_);
  ByteView adb = initiator_ ? peerAd : ByteView(ad_);
  std::string dsiIsk = std::string(CPACE_DSI) + std::string(ISK_SUFFIX);
  crypto_hash_sha512_state state;
  crypto_hash_sha512_init(&state);
  uint8_t len[LEB128_BYTES_MAX];
  for (ByteView part : {asBytes(dsiIsk), ByteView(sid_), k.view(), ya, ada, yb, adb}) {
    size_t used = lebLength(part.size(), len);
    crypto_hash_sha512_update(&state, len, used);
    crypto_hash_sha512_update(&state, part.data(), part.size());
  }
  SecretBuffer isk(CPACE_ISK_BYTES);
  crypto_hash_sha512_final(&state, isk.data());
  sodium_memzero(&state, sizeof state);
  k_ = std::move(k);
  return isk;
}

SecretBuffer CPaceParty::macKey(ByteView sid, ByteView isk) {
  crypto_hash_sha512_state state;
  crypto_hash_sha512_init(&state);
  crypto_hash_sha512_update(&state, asBytes(MAC_DOMAIN).data(), MAC_DOMAIN.size());
  crypto_hash_sha512_update(&state, sid.data(), sid.size());
  crypto_hash_sha512_update(&state, isk.data(), isk.size());
  SecretBuffer out(crypto_hash_sha512_BYTES);
  crypto_hash_sha512_final(&state, out.data());
  sodium_memzero(&state, sizeof state);
  return out;
}

Bytes CPaceParty::tag(ByteView macKey, ByteView share, ByteView ad) {
  Bytes message = cpaceLvCat({share, ad});
  crypto_auth_hmacsha512_state state;
  crypto_auth_hmacsha512_init(&state, macKey.data(), macKey.size());
  crypto_auth_hmacsha512_update(&state, message.data(), message.size());
  Bytes out(CPACE_MAC_BYTES);
  crypto_auth_hmacsha512_final(&state, out.data());
  sodium_memzero(&state, sizeof state);
  return out;
}

bool CPaceParty::checkTag(ByteView macKey, ByteView share, ByteView ad, ByteView tagGiven) {
  if (tagGiven.size() != CPACE_MAC_BYTES) return false;
  Bytes expected = tag(macKey, share, ad);
  return sodium_memcmp(expected.data(), tagGiven.data(), CPACE_MAC_BYTES) == 0;
}

}  // namespace kith::crypto
