#include "crypto/noise.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>

#include "base/error.h"

namespace kith::crypto::noise {

namespace {

// Noise's HASHLEN and BLOCKLEN for the largest hash we support (BLAKE2b).
constexpr size_t HASH_BYTES_MAX = 64;
constexpr size_t BLOCK_BYTES_MAX = 128;
constexpr size_t KEY_BYTES = 32;
constexpr size_t NONCE_BYTES = 12;
constexpr size_t ENCRYPTED_STATIC_BYTES = DH_BYTES + TAG_BYTES;
constexpr size_t HANDSHAKE_MESSAGE_COUNT = 3;

static_assert(crypto_scalarmult_BYTES == DH_BYTES);
static_assert(crypto_scalarmult_SCALARBYTES == DH_BYTES);
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == KEY_BYTES);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == NONCE_BYTES);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == TAG_BYTES);
static_assert(crypto_generichash_BYTES_MAX >= HASH_BYTES_MAX);
static_assert(crypto_hash_sha256_BYTES <= HASH_BYTES_MAX);
static_assert(crypto_sign_SECRETKEYBYTES == 64);
static_assert(crypto_sign_PUBLICKEYBYTES == 32);
static_assert(NOISE_MESSAGE_BYTES_MAX == 0xffff, "the frame header is a u16");

struct HashSpec {
  size_t hashBytes;
  size_t blockBytes;
};

HashSpec specOf(NoiseHash hash) {
  if (hash == NoiseHash::BLAKE2B) return {64, 128};
  KITH_ASSERT(hash == NoiseHash::SHA256);
  return {crypto_hash_sha256_BYTES, 64};
}

// Stack bytes derived from secrets, wiped when they go out of scope.
template <size_t N>
struct WipedArray {
  std::array<uint8_t, N> bytes;
  ~WipedArray() { sodium_memzero(bytes.data(), N); }
  uint8_t* data() { return bytes.data(); }
  ByteView view(size_t n) const { return {bytes.data(), n}; }
};

// Noise's HASH over the concatenation of several inputs.
class Hasher {
public:
  explicit Hasher(NoiseHash hash) : hash_(hash) {
    if (hash_ == NoiseHash::BLAKE2B) {
      crypto_generichash_init(&state_.blake2b, nullptr, 0, HASH_BYTES_MAX);
    } else {
      crypto_hash_sha256_init(&state_.sha256);
    }
  }
  ~Hasher() { sodium_memzero(&state_, sizeof state_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(ByteView data) {
    if (hash_ == NoiseHash::BLAKE2B) {
      crypto_generichash_update(&state_.blake2b, data.data(), data.size());
    } else {
      crypto_hash_sha256_update(&state_.sha256, data.data(), data.size());
    }
  }
  // Writes HASHLEN bytes.
  void final(uint8_t* out) {
    if (hash_ == NoiseHash::BLAKE2B) {
      crypto_generichash_final(&state_.blake2b, out, HASH_BYTES_MAX);
    } else {
      crypto_hash_sha256_final(&state_.sha256, out);
    }
  }

private:
  NoiseHash hash_;
  union {
    crypto_generichash_state blake2b;
    crypto_hash_sha256_state sha256;
  } state_;
};

// HMAC-HASH (RFC 2104) as Noise section 4.3 defines it. libsodium's keyed BLAKE2b is a different
// construction, so HMAC is built here from the plain hash with BLOCKLEN-byte key padding.
void hmac(NoiseHash hash, ByteView key, std::initializer_list<ByteView> data, uint8_t* out) {
  HashSpec spec = specOf(hash);
  KITH_ASSERT(key.size() <= spec.blockBytes);  // Noise keys are HASHLEN bytes, never longer
  WipedArray<BLOCK_BYTES_MAX> pad;
  std::fill(pad.bytes.begin(), pad.bytes.end(), 0);
  std::copy(key.begin(), key.end(), pad.bytes.begin());
  for (size_t i = 0; i < spec.blockBytes; ++i) pad.bytes[i] ^= 0x36;
  WipedArray<HASH_BYTES_MAX> inner;
  {
    Hasher h(hash);
    h.update(pad.view(spec.blockBytes));
    for (ByteView part : data) h.update(part);
    h.final(inner.data());
  }
  for (size_t i = 0; i < spec.blockBytes; ++i) pad.bytes[i] ^= 0x36 ^ 0x5c;
  Hasher h(hash);
  h.update(pad.view(spec.blockBytes));
  h.update(inner.view(spec.hashBytes));
  h.final(out);
}

// Noise's HKDF with two outputs of HASHLEN bytes each. `out1` may alias `chainingKey`, which is
// read only before out1 is written.
void hkdf2(NoiseHash hash, ByteView chainingKey, ByteView ikm, uint8_t* out1, uint8_t* out2) {
  size_t hashBytes = specOf(hash).hashBytes;
  WipedArray<HASH_BYTES_MAX> tempKey;
  hmac(hash, chainingKey, {ikm}, tempKey.data());
  static constexpr uint8_t ONE = 0x01;
  static constexpr uint8_t TWO = 0x02;
  hmac(hash, tempKey.view(hashBytes), {ByteView(&ONE, 1)}, out1);
  hmac(hash, tempKey.view(hashBytes), {ByteView(out1, hashBytes), ByteView(&TWO, 1)}, out2);
}

// X25519. A peer's low-order point gives an all-zero output, which libsodium refuses.
WipedArray<DH_BYTES> dh(const X25519KeyPair& mine, const Key32& theirs) {
  KITH_ASSERT(mine.secretKey.size() == DH_BYTES);
  WipedArray<DH_BYTES> out;
  if (crypto_scalarmult(out.data(), mine.secretKey.data(), theirs.data()) != 0) {
    throw Error(ErrorKind::AUTH, "the peer's X25519 public key is of low order");
  }
  return out;
}

Key32 keyFrom(ByteView bytes) {
  KITH_ASSERT(bytes.size() == DH_BYTES);
  Key32 key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

X25519KeyPair copyKeyPair(const X25519KeyPair& pair) {
  KITH_ASSERT(pair.secretKey.size() == DH_BYTES);
  return {pair.publicKey, SecretBuffer::copyOf(pair.secretKey.view())};
}

}  // namespace

std::string protocolName(NoiseHash hash) {
  return hash == NoiseHash::BLAKE2B ? "Noise_XK_25519_ChaChaPoly_BLAKE2b" : "Noise_XK_25519_ChaChaPoly_SHA256";
}

// ---------------------------------------------------------------------------------------------
// Keys

X25519KeyPair X25519KeyPair::generate() {
  SecretBuffer secret(DH_BYTES);
  randombytes_buf(secret.data(), secret.size());
  return fromSecret(secret.view());
}

X25519KeyPair X25519KeyPair::fromSecret(ByteView secret) {
  if (secret.size() != DH_BYTES) { throw Error(ErrorKind::INPUT, "an X25519 secret key must be 32 bytes"); }
  X25519KeyPair pair{{}, SecretBuffer::copyOf(secret)};
  // The base point has no low-order component, so this cannot fail.
  KITH_ASSERT(crypto_scalarmult_base(pair.publicKey.data(), pair.secretKey.data()) == 0);
  return pair;
}

std::optional<Key32> ed25519PublicToX25519(const Key32& ed25519Public) {
  Key32 out;
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), ed25519Public.data()) != 0) { return std::nullopt; }
  return out;
}

X25519KeyPair ed25519SecretToX25519(ByteView ed25519Secret64) {
  if (ed25519Secret64.size() != crypto_sign_SECRETKEYBYTES) {
    throw Error(ErrorKind::INPUT, "an Ed25519 secret key must be 64 bytes");
  }
  SecretBuffer secret(DH_BYTES);
  KITH_ASSERT(crypto_sign_ed25519_sk_to_curve25519(secret.data(), ed25519Secret64.data()) == 0);
  return X25519KeyPair::fromSecret(secret.view());
}

// ---------------------------------------------------------------------------------------------
// CipherState

namespace {
// Noise's nonce encoding for ChaChaPoly: 32 zero bits, then the counter little-endian.
std::array<uint8_t, NONCE_BYTES> encodeNonce(uint64_t n) {
  std::array<uint8_t, NONCE_BYTES> out{};
  for (size_t i = 0; i < 8; ++i) out[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  return out;
}

// 2^64-1 is reserved by Noise (for rekey), so a session ends one message before it.
constexpr uint64_t NONCE_RESERVED = UINT64_MAX;
}  // namespace

CipherState::CipherState(ByteView key32) : key_(SecretBuffer::copyOf(key32)) { KITH_ASSERT(key32.size() == KEY_BYTES); }

Bytes CipherState::encryptWithAd(ByteView ad, ByteView plaintext) {
  if (!hasKey()) return Bytes(plaintext.begin(), plaintext.end());
  if (nonce_ == NONCE_RESERVED) { throw Error(ErrorKind::AUTH, "the session's nonces are exhausted; reconnect"); }
  KITH_ASSERT(plaintext.size() <= TRANSPORT_PAYLOAD_BYTES_MAX);
  auto nonce = encodeNonce(nonce_);
  Bytes out(plaintext.size() + TAG_BYTES);
  unsigned long long outBytes = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &outBytes, plaintext.data(), plaintext.size(), ad.data(),
                                            ad.size(), nullptr, nonce.data(), key_.data());
  KITH_ASSERT(outBytes == out.size());
  ++nonce_;
  return out;
}

Bytes CipherState::decryptWithAd(ByteView ad, ByteView ciphertext) {
  if (!hasKey()) return Bytes(ciphertext.begin(), ciphertext.end());
  if (nonce_ == NONCE_RESERVED) { throw Error(ErrorKind::AUTH, "the session's nonces are exhausted; reconnect"); }
  if (ciphertext.size() < TAG_BYTES) {
    throw Error(ErrorKind::AUTH, "a Noise message is shorter than its authentication tag");
  }
  auto nonce = encodeNonce(nonce_);
  Bytes out(ciphertext.size() - TAG_BYTES);
  unsigned long long outBytes = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &outBytes, nullptr, ciphertext.data(), ciphertext.size(),
                                                ad.data(), ad.size(), nonce.data(), key_.data()) != 0) {
    throw Error(ErrorKind::AUTH, "a Noise message failed to authenticate");
  }
  KITH_ASSERT(outBytes == out.size());
  ++nonce_;
  return out;
}

// ---------------------------------------------------------------------------------------------
// HandshakeState: Noise's SymmetricState and HandshakeState for the XK pattern.

struct HandshakeState::Impl {
  Impl(ByteView prologue, const X25519KeyPair& staticKeys, bool initiator, HandshakeOverrides overrides)
      : hash(overrides.hash), hashBytes(specOf(overrides.hash).hashBytes), isInitiator(initiator),
        s(copyKeyPair(staticKeys)), e(std::move(overrides.ephemeral)) {
    initializeSymmetric();
    mixHash(prologue);
  }

  NoiseHash hash;
  size_t hashBytes;
  bool isInitiator;
  size_t messagesDone = 0;
  bool failed = false;
  bool wasSplit = false;

  SecretBuffer chainingKey{HASH_BYTES_MAX};  // ck; its first hashBytes are used
  std::array<uint8_t, HASH_BYTES_MAX> h{};
  CipherState cipher;

  X25519KeyPair s;
  std::optional<X25519KeyPair> e;
  std::optional<Key32> rs;
  std::optional<Key32> re;

  ByteView hView() const { return {h.data(), hashBytes}; }
  ByteView ckView() const { return {chainingKey.data(), hashBytes}; }

  void initializeSymmetric() {
    std::string name = protocolName(hash);
    if (name.size() <= hashBytes) {
      std::copy(name.begin(), name.end(), h.begin());  // h is zero-initialised: the padding
    } else {
      Hasher hasher(hash);
      hasher.update(asBytes(name));
      hasher.final(h.data());
    }
    std::copy(h.begin(), h.begin() + hashBytes, chainingKey.data());
  }

  void mixHash(ByteView data) {
    Hasher hasher(hash);
    hasher.update(hView());
    hasher.update(data);
    hasher.final(h.data());
  }

  void mixKey(ByteView ikm) {
    WipedArray<HASH_BYTES_MAX> tempKey;
    hkdf2(hash, ckView(), ikm, chainingKey.data(), tempKey.data());
    // HASHLEN 64 gives a 64-byte output; ChaChaPoly takes its first 32 bytes.
    cipher = CipherState(tempKey.view(KEY_BYTES));
  }

  void encryptAndHash(Bytes& out, ByteView plaintext) {
    Bytes ciphertext = cipher.encryptWithAd(hView(), plaintext);
    mixHash(ciphertext);
    out.insert(out.end(), ciphertext.begin(), ciphertext.end());
  }

  Bytes decryptAndHash(ByteView ciphertext) {
    Bytes plaintext = cipher.decryptWithAd(hView(), ciphertext);
    mixHash(ciphertext);
    return plaintext;
  }

  void writeEphemeral(Bytes& out) {
    if (!e) e = X25519KeyPair::generate();  // tests inject a fixed one instead
    out.insert(out.end(), e->publicKey.begin(), e->publicKey.end());
    mixHash(e->publicKey);
  }

  ByteView readEphemeral(ByteView message) {
    re = keyFrom(message.first(DH_BYTES));
    mixHash(*re);
    return message.subspan(DH_BYTES);
  }
};

HandshakeState::HandshakeState(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HandshakeState::HandshakeState(HandshakeState&&) noexcept = default;
HandshakeState& HandshakeState::operator=(HandshakeState&&) noexcept = default;
HandshakeState::~HandshakeState() = default;

HandshakeState HandshakeState::initiator(ByteView prologue, const X25519KeyPair& s, const Key32& rs,
                                         HandshakeOverrides overrides) {
  auto impl = std::make_unique<Impl>(prologue, s, true, std::move(overrides));
  impl->rs = rs;
  impl->mixHash(rs);  // pre-message "<- s"
  return HandshakeState(std::move(impl));
}

HandshakeState HandshakeState::responder(ByteView prologue, const X25519KeyPair& s, HandshakeOverrides overrides) {
  auto impl = std::make_unique<Impl>(prologue, s, false, std::move(overrides));
  impl->mixHash(impl->s.publicKey);  // pre-message "<- s"
  return HandshakeState(std::move(impl));
}

bool HandshakeState::isComplete() const { return impl_->messagesDone == HANDSHAKE_MESSAGE_COUNT; }

bool HandshakeState::isWriteTurn() const {
  // The initiator writes messages 1 and 3 (indexes 0 and 2), the responder message 2.
  return !isComplete() && (impl_->messagesDone % 2 == 0) == impl_->isInitiator;
}

Bytes HandshakeState::writeMessage(ByteView payload) {
  Impl& st = *impl_;
  KITH_ASSERT(!st.failed);
  KITH_ASSERT(isWriteTurn());
  st.failed = true;  // cleared on success: a throw leaves the state unusable
  Bytes out;
  switch (st.messagesDone) {
    case 0:  // -> e, es
      KITH_ASSERT(payload.size() <= NOISE_MESSAGE_BYTES_MAX - DH_BYTES - TAG_BYTES);
      st.writeEphemeral(out);
      st.mixKey(dh(*st.e, *st.rs).view(DH_BYTES));
      break;
    case 1:  // <- e, ee
      KITH_ASSERT(payload.size() <= NOISE_MESSAGE_BYTES_MAX - DH_BYTES - TAG_BYTES);
      st.writeEphemeral(out);
      st.mixKey(dh(*st.e, *st.re).view(DH_BYTES));
      break;
    case 2:  // -> s, se
      KITH_ASSERT(payload.size() <= NOISE_MESSAGE_BYTES_MAX - ENCRYPTED_STATIC_BYTES - TAG_BYTES);
      st.encryptAndHash(out, st.s.publicKey);
      st.mixKey(dh(st.s, *st.re).view(DH_BYTES));
      break;
  }
  st.encryptAndHash(out, payload);
  st.failed = false;
  ++st.messagesDone;
  return out;
}

Bytes HandshakeState::readMessage(ByteView message) {
  Impl& st = *impl_;
  KITH_ASSERT(!st.failed);
  KITH_ASSERT(!isComplete());
  KITH_ASSERT(!isWriteTurn());
  st.failed = true;  // cleared on success: a throw leaves the state unusable
  size_t number = st.messagesDone + 1;
  size_t minBytes = (number == 3 ? ENCRYPTED_STATIC_BYTES : DH_BYTES) + TAG_BYTES;
  if (message.size() < minBytes || message.size() > NOISE_MESSAGE_BYTES_MAX) {
    throw Error(ErrorKind::AUTH, "handshake message " + std::to_string(number) + " has " +
                                     std::to_string(message.size()) + " bytes, expected " + std::to_string(minBytes) +
                                     " to " + std::to_string(NOISE_MESSAGE_BYTES_MAX));
  }
  Bytes payload;
  try {
    ByteView rest = message;
    switch (st.messagesDone) {
      case 0:  // -> e, es
        rest = st.readEphemeral(rest);
        st.mixKey(dh(st.s, *st.re).view(DH_BYTES));
        break;
      case 1:  // <- e, ee
        rest = st.readEphemeral(rest);
        st.mixKey(dh(*st.e, *st.re).view(DH_BYTES));
        break;
      case 2:  // -> s, se
        st.rs = keyFrom(st.decryptAndHash(rest.first(ENCRYPTED_STATIC_BYTES)));
        rest = rest.subspan(ENCRYPTED_STATIC_BYTES);
        st.mixKey(dh(*st.e, *st.rs).view(DH_BYTES));
        break;
    }
    payload = st.decryptAndHash(rest);
  } catch (const Error& error) {
    throw Error(ErrorKind::AUTH, "handshake message " + std::to_string(number) + " refused: " + error.what());
  }
  st.failed = false;
  ++st.messagesDone;
  return payload;
}

SessionCiphers HandshakeState::split() {
  Impl& st = *impl_;
  KITH_ASSERT(isComplete());
  KITH_ASSERT(!st.wasSplit);
  WipedArray<HASH_BYTES_MAX> k1;
  WipedArray<HASH_BYTES_MAX> k2;
  hkdf2(st.hash, st.ckView(), {}, k1.data(), k2.data());
  CipherState c1(k1.view(KEY_BYTES));
  CipherState c2(k2.view(KEY_BYTES));
  // Nothing secret remains needed: free (and so wipe) it now rather than with the object.
  st.wasSplit = true;
  st.chainingKey = SecretBuffer();
  st.cipher = CipherState();
  st.s.secretKey = SecretBuffer();
  st.e.reset();
  if (st.isInitiator) return {std::move(c1), std::move(c2)};
  return {std::move(c2), std::move(c1)};
}

Bytes HandshakeState::handshakeHash() const {
  KITH_ASSERT(isComplete());
  return Bytes(impl_->h.begin(), impl_->h.begin() + impl_->hashBytes);
}

Key32 HandshakeState::remoteStatic() const {
  // A failed message 3 may have decrypted a static key that was never authenticated.
  KITH_ASSERT(!impl_->failed);
  KITH_ASSERT(impl_->rs.has_value());
  return *impl_->rs;
}

// ---------------------------------------------------------------------------------------------
// Framing

Bytes frame(ByteView message) {
  KITH_ASSERT(message.size() <= NOISE_MESSAGE_BYTES_MAX);
  Bytes out;
  out.reserve(FRAME_HEADER_BYTES + message.size());
  out.push_back(static_cast<uint8_t>(message.size() >> 8));
  out.push_back(static_cast<uint8_t>(message.size() & 0xff));
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

FrameReader::FrameReader(size_t frameBytesMax) : frameBytesMax_(frameBytesMax) {
  KITH_ASSERT(frameBytesMax <= NOISE_MESSAGE_BYTES_MAX);
}

void FrameReader::setFrameBytesMax(size_t frameBytesMax) {
  KITH_ASSERT(frameBytesMax <= NOISE_MESSAGE_BYTES_MAX);
  frameBytesMax_ = frameBytesMax;
}

void FrameReader::feed(ByteView bytes) {
  // Drop what was taken so the buffer holds at most the untaken bytes plus this feed.
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(start_));
  start_ = 0;
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<Bytes> FrameReader::tryNext() {
  if (bufferedBytes() < FRAME_HEADER_BYTES) return std::nullopt;
  size_t length = size_t{buffer_[start_]} << 8 | buffer_[start_ + 1];
  if (length > frameBytesMax_) {
    throw Error(ErrorKind::AUTH, "the peer announced a frame of " + std::to_string(length) + " bytes; the limit is " +
                                     std::to_string(frameBytesMax_));
  }
  if (bufferedBytes() < FRAME_HEADER_BYTES + length) return std::nullopt;
  auto begin = buffer_.begin() + static_cast<ptrdiff_t>(start_ + FRAME_HEADER_BYTES);
  Bytes body(begin, begin + static_cast<ptrdiff_t>(length));
  start_ += FRAME_HEADER_BYTES + length;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return body;
}

TransportEncoder::TransportEncoder(CipherState send) : cipher_(std::move(send)) { KITH_ASSERT(cipher_.hasKey()); }

Bytes TransportEncoder::encrypt(ByteView plaintext) {
  Bytes out;
  size_t frames =
      std::max<size_t>(1, (plaintext.size() + TRANSPORT_PAYLOAD_BYTES_MAX - 1) / TRANSPORT_PAYLOAD_BYTES_MAX);
  out.reserve(plaintext.size() + frames * (FRAME_HEADER_BYTES + TAG_BYTES));
  size_t offset = 0;
  do {
    size_t chunk = std::min(plaintext.size() - offset, TRANSPORT_PAYLOAD_BYTES_MAX);
    Bytes framed = frame(cipher_.encryptWithAd({}, plaintext.subspan(offset, chunk)));
    out.insert(out.end(), framed.begin(), framed.end());
    offset += chunk;
  } while (offset < plaintext.size());
  return out;
}

TransportDecoder::TransportDecoder(CipherState receive, FrameReader reader)
    : cipher_(std::move(receive)), reader_(std::move(reader)) {
  KITH_ASSERT(cipher_.hasKey());
  reader_.setFrameBytesMax(NOISE_MESSAGE_BYTES_MAX);
}

std::optional<Bytes> TransportDecoder::tryNext() {
  std::optional<Bytes> body = reader_.tryNext();
  if (!body) return std::nullopt;
  return cipher_.decryptWithAd({}, *body);
}

}  // namespace kith::crypto::noise
