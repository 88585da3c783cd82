// kith's transport handshake and framing: Noise_XK_25519_ChaChaPoly_BLAKE2b (Noise Protocol
// Framework, revision 34) on libsodium, and the u16-length-prefixed frames that carry handshake and
// transport messages over a byte stream. specs/transport.md is the normative description; this
// module does no I/O: the node layer moves the bytes.
//
// XK: the initiator knows the responder's static key in advance (it dialled a known peer); the
// responder learns the initiator's static key from message 3.
//   <- s
//   ...
//   -> e, es
//   <- e, ee
//   -> s, se
//
// Threading: every object here is used from one thread at a time; distinct objects are independent.
//
// Errors: anything a peer can cause (a tag that doesn't verify, a malformed or oversized message, a
// low-order public key, an exhausted nonce) throws kith::Error(ErrorKind::AUTH, ...); the node
// layer closes the connection and logs the reason. Calling methods out of order is our bug and
// fails a KITH_ASSERT. An object that has thrown must be dropped, not used again.
//
// Caveats:
// - Secret keys owned here live in SecretBuffer (guarded memory). Short-lived intermediates (DH
//   outputs, HMAC pads, hash states) live on the stack and are wiped with sodium_memzero.
// - No rekey: a session ends (AUTH error) after 2^64-1 messages in one direction.
// - Message 1's payload has no forward secrecy and can be replayed to the responder; kith sends
//   nothing in it (specs/transport.md).
// - Frames are a byte stream: TransportEncoder splits a long plaintext across frames and the
//   decoder yields the pieces; message boundaries belong to the layer above (Cap'n Proto's).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace kith::crypto::noise {

// Noise's limit for any message, handshake or transport, including the 16-byte tag.
inline constexpr size_t NOISE_MESSAGE_BYTES_MAX = 65535;
inline constexpr size_t TAG_BYTES = 16;
inline constexpr size_t TRANSPORT_PAYLOAD_BYTES_MAX = NOISE_MESSAGE_BYTES_MAX - TAG_BYTES;
// The big-endian u16 length before every message on the wire.
inline constexpr size_t FRAME_HEADER_BYTES = 2;
inline constexpr size_t DH_BYTES = 32;
// Binds the kith transport protocol version into the handshake hash.
inline constexpr std::string_view KITH_TRANSPORT_PROLOGUE = "kith/transport/v1";

// kith uses BLAKE2B. SHA256 exists so the implementation can be checked against a second public
// test vector (different HASHLEN and BLOCKLEN).
enum class NoiseHash { BLAKE2B, SHA256 };
// "Noise_XK_25519_ChaChaPoly_BLAKE2b" or "..._SHA256".
std::string protocolName(NoiseHash hash);

struct X25519KeyPair {
  Key32 publicKey;
  SecretBuffer secretKey;  // 32 bytes

  static X25519KeyPair generate();
  // Throws Error(INPUT) unless `secret` is 32 bytes.
  static X25519KeyPair fromSecret(ByteView secret);
};

// The X25519 form of an Ed25519 identity, so a node's identity key doubles as its Noise static key.
// nullopt when `ed25519Public` is not a valid point of the main subgroup.
std::optional<Key32> ed25519PublicToX25519(const Key32& ed25519Public);
// `ed25519Secret64` is libsodium's 64-byte secret key (seed || public). Throws Error(INPUT) on a
// wrong length.
X25519KeyPair ed25519SecretToX25519(ByteView ed25519Secret64);

// A ChaChaPoly key and its message counter. Move-only, so a counter can't be duplicated (and with
// it a nonce reused).
class CipherState {
public:
  CipherState() = default;  // no key: encrypt and decrypt pass bytes through, as Noise specifies
  explicit CipherState(ByteView key32);

  bool hasKey() const { return !key_.empty(); }
  uint64_t nonce() const { return nonce_; }
  // Noise's SetNonce; tests use it to reach the end of the nonce space. Never move it backwards on
  // a live session.
  void setNonce(uint64_t nonce) { nonce_ = nonce; }

  // Returns ciphertext || 16-byte tag and advances the nonce. Throws AUTH when the nonce is spent.
  [[nodiscard]] Bytes encryptWithAd(ByteView ad, ByteView plaintext);
  // Throws AUTH when the tag doesn't verify, the input is shorter than a tag or the nonce is spent;
  // the nonce advances only on success.
  [[nodiscard]] Bytes decryptWithAd(ByteView ad, ByteView ciphertext);

private:
  SecretBuffer key_;
  uint64_t nonce_ = 0;
};

// Only tests set these: fixed ephemerals reproduce the published vectors.
struct HandshakeOverrides {
  std::optional<X25519KeyPair> ephemeral;
  NoiseHash hash = NoiseHash::BLAKE2B;
};

// The two directions of a finished session, already oriented for this side (Noise's c1 carries
// initiator-to-responder traffic, c2 the other way).
struct SessionCiphers {
  CipherState send;
  CipherState receive;
};

class HandshakeState {
public:
  // Copies the keys it is given; the caller keeps ownership of `s`.
  static HandshakeState initiator(ByteView prologue, const X25519KeyPair& s, const Key32& rs,
                                  HandshakeOverrides overrides = {});
  static HandshakeState responder(ByteView prologue, const X25519KeyPair& s, HandshakeOverrides overrides = {});
  HandshakeState(HandshakeState&&) noexcept;
  HandshakeState& operator=(HandshakeState&&) noexcept;
  ~HandshakeState();

  // True when the next step is writeMessage (else readMessage), until the handshake completes.
  bool isWriteTurn() const;
  bool isComplete() const;

  // Returns the next handshake message (unframed). Precondition: isWriteTurn() and the payload fits
  // (NOISE_MESSAGE_BYTES_MAX less 48 for messages 1 and 2, less 64 for message 3).
  [[nodiscard]] Bytes writeMessage(ByteView payload);
  // Returns the payload of the peer's next handshake message. Throws AUTH on a message that is
  // malformed, too long, carries a low-order key, or doesn't authenticate.
  Bytes readMessage(ByteView message);

  // After completion, once: the transport ciphers. Wipes the handshake's remaining secrets.
  [[nodiscard]] SessionCiphers split();
  // Noise's h: a HASHLEN-byte value that is the same on both sides only when the handshake
  // succeeded; usable for channel binding. Valid after completion, also after split().
  Bytes handshakeHash() const;
  // The peer's X25519 static key: known from the start to an initiator, from message 3 on to a
  // responder. Precondition: it is known and the handshake has not failed.
  Key32 remoteStatic() const;

private:
  struct Impl;
  explicit HandshakeState(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Prefixes a message (handshake or transport) with its big-endian u16 length.
// Precondition: message.size() <= NOISE_MESSAGE_BYTES_MAX.
Bytes frame(ByteView message);

// Splits a byte stream into frames. Feed what arrives; take frames with tryNext().
class FrameReader {
public:
  // `frameBytesMax` bounds what one frame may announce; a smaller value lets the handshake refuse a
  // large frame before buffering it.
  explicit FrameReader(size_t frameBytesMax = NOISE_MESSAGE_BYTES_MAX);
  // The buffer holds what has been fed and not yet taken; drain it with tryNext() after each feed.
  void feed(ByteView bytes);
  // The next frame's body, or nullopt until one is complete. Throws AUTH as soon as a header
  // announces more than frameBytesMax.
  [[nodiscard]] std::optional<Bytes> tryNext();
  size_t bufferedBytes() const { return buffer_.size() - start_; }
  size_t frameBytesMax() const { return frameBytesMax_; }
  // Precondition: frameBytesMax <= NOISE_MESSAGE_BYTES_MAX.
  void setFrameBytesMax(size_t frameBytesMax);

private:
  size_t frameBytesMax_;
  Bytes buffer_;
  size_t start_ = 0;  // bytes before this offset were already taken
};

class TransportEncoder {
public:
  explicit TransportEncoder(CipherState send);
  // One or more frames carrying `plaintext`, split at TRANSPORT_PAYLOAD_BYTES_MAX; an empty
  // plaintext gives one frame with an empty payload.
  [[nodiscard]] Bytes encrypt(ByteView plaintext);

private:
  CipherState cipher_;
};

class TransportDecoder {
public:
  // `reader` carries over bytes that arrived behind the last handshake message; its frame limit is
  // raised to NOISE_MESSAGE_BYTES_MAX (the handshake may have used a smaller one).
  explicit TransportDecoder(CipherState receive, FrameReader reader = FrameReader());
  void feed(ByteView bytes) { reader_.feed(bytes); }
  // The next frame's plaintext, or nullopt until one is complete. Throws AUTH when a frame doesn't
  // authenticate (tampered, replayed, reordered, truncated).
  [[nodiscard]] std::optional<Bytes> tryNext();

private:
  CipherState cipher_;
  FrameReader reader_;
};

}  // namespace kith::crypto::noise
