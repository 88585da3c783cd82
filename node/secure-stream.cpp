#include "node/secure-stream.h"

#include <sodium.h>

#include <cstring>

#include <kj/debug.h>

#include "base/error.h"
#include "crypto/noise.h"
#include "node/limits.h"

namespace kith::node {

namespace noise = crypto::noise;

namespace {

// Handshake messages are 48, 48 and 96 bytes; the status frame after them is at most 1 + 200 + 16.
constexpr size_t HANDSHAKE_MESSAGE_BYTES_MAX = 256;
constexpr size_t READ_CHUNK_BYTES = 64 * 1024;
constexpr uint8_t STATUS_ACCEPTED = 0;
constexpr uint8_t STATUS_REFUSED = 1;
constexpr size_t REFUSAL_REASON_BYTES_MAX = 200;

ByteView prologue() { return asBytes(noise::KITH_TRANSPORT_PROLOGUE); }

// Runs `fn`, turning kith::Error (a peer's bad bytes) into a kj exception that says so.
template <typename F>
auto guarded(const char* stage, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    kj::throwFatalException(
        nodeException(kj::Exception::Type::FAILED, std::string("secure transport failed at ") + stage + ": " + e.what()));
  }
}

class SecureStream final : public kj::AsyncIoStream {
public:
  SecureStream(kj::Own<kj::AsyncIoStream> inner, noise::SessionCiphers ciphers, noise::FrameReader leftover,
               std::shared_ptr<std::string> failure)
      : inner_(kj::mv(inner)), encoder_(std::move(ciphers.send)),
        decoder_(std::move(ciphers.receive), std::move(leftover)), failure_(kj::mv(failure)),
        chunk_(READ_CHUNK_BYTES) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return readLoop(static_cast<kj::byte*>(buffer), minBytes, maxBytes, 0)
        .catch_([this](kj::Exception&& e) -> kj::Promise<size_t> {
          if (failure_->empty()) *failure_ = e.getDescription().cStr();
          return kj::mv(e);
        });
  }

  kj::Promise<void> write(const void* buffer, size_t size) override {
    if (size == 0) return kj::READY_NOW;
    Bytes frames = guarded("encrypting", [&] { return encoder_.encrypt({static_cast<const uint8_t*>(buffer), size}); });
    auto owned = kj::heap<Bytes>(std::move(frames));
    auto promise = inner_->write(owned->data(), owned->size());
    return promise.attach(kj::mv(owned));
  }

  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    size_t total = 0;
    for (auto p : pieces) total += p.size();
    if (total == 0) return kj::READY_NOW;
    Bytes plain;
    plain.reserve(total);
    for (auto p : pieces) plain.insert(plain.end(), p.begin(), p.end());
    Bytes frames = guarded("encrypting", [&] { return encoder_.encrypt(plain); });
    auto owned = kj::heap<Bytes>(std::move(frames));
    auto promise = inner_->write(owned->data(), owned->size());
    return promise.attach(kj::mv(owned));
  }

  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner_->getsockopt(level, option, value, length);
  }
  void getpeername(struct sockaddr* addr, kj::uint* length) override { inner_->getpeername(addr, length); }
  void getsockname(struct sockaddr* addr, kj::uint* length) override { inner_->getsockname(addr, length); }

private:
  size_t takePending(kj::byte* out, size_t maxBytes) {
    size_t n = std::min(maxBytes, pending_.size() - pendingPos_);
    if (n == 0) return 0;  // memcpy from an empty vector's null data() is undefined (UBSan aborts)
    std::memcpy(out, pending_.data() + pendingPos_, n);
    pendingPos_ += n;
    if (pendingPos_ == pending_.size()) {
      pending_.clear();
      pendingPos_ = 0;
    }
    return n;
  }

  kj::Promise<size_t> readLoop(kj::byte* out, size_t minBytes, size_t maxBytes, size_t done) {
    done += takePending(out + done, maxBytes - done);
    while (done < maxBytes) {
      auto plain = guarded("decrypting", [&] { return decoder_.tryNext(); });
      if (!plain) break;
      pending_ = std::move(*plain);
      pendingPos_ = 0;
      done += takePending(out + done, maxBytes - done);
    }
    if (done >= minBytes) return done;
    return inner_->tryRead(chunk_.data(), 1, chunk_.size())
        .then([this, out, minBytes, maxBytes, done](size_t n) -> kj::Promise<size_t> {
          if (n == 0) {
            // End of stream: fewer than minBytes, as the contract says. Half a frame is a cut.
            if (failure_->empty()) *failure_ = "the peer closed the connection";
            return done;
          }
          decoder_.feed({chunk_.data(), n});
          return readLoop(out, minBytes, maxBytes, done);
        });
  }

  kj::Own<kj::AsyncIoStream> inner_;
  noise::TransportEncoder encoder_;
  noise::TransportDecoder decoder_;
  std::shared_ptr<std::string> failure_;
  Bytes pending_;  // decrypted bytes not yet handed to a reader
  size_t pendingPos_ = 0;
  Bytes chunk_;
};

// Reads one handshake frame from `stream`, with `reader` keeping any bytes that arrived beyond it.
kj::Promise<Bytes> readFrame(kj::AsyncIoStream& stream, noise::FrameReader& reader, Bytes& chunk) {
  auto frame = guarded("reading a handshake message", [&] { return reader.tryNext(); });
  if (frame) return kj::mv(*frame);
  return stream.tryRead(chunk.data(), 1, chunk.size()).then([&stream, &reader, &chunk](size_t n) -> kj::Promise<Bytes> {
    if (n == 0) {
      return KJ_EXCEPTION(DISCONNECTED, "the peer closed the connection during the handshake");
    }
    reader.feed({chunk.data(), n});
    return readFrame(stream, reader, chunk);
  });
}

kj::Promise<void> writeFrame(kj::AsyncIoStream& stream, Bytes message) {
  auto owned = kj::heap<Bytes>(noise::frame(message));
  auto promise = stream.write(owned->data(), owned->size());
  return promise.attach(kj::mv(owned));
}

// State that lives across the handshake's steps.
struct Handshake {
  kj::Own<kj::AsyncIoStream> raw;
  noise::HandshakeState state;
  noise::FrameReader reader{HANDSHAKE_MESSAGE_BYTES_MAX};
  Bytes chunk = Bytes(READ_CHUNK_BYTES);
  crypto::PublicKey remote{};

  Handshake(kj::Own<kj::AsyncIoStream> raw, noise::HandshakeState state)
      : raw(kj::mv(raw)), state(std::move(state)) {}
};

kj::Promise<SecureConnection> withTimeout(kj::Timer& timer, kj::Promise<SecureConnection> promise) {
  return timer.timeoutAfter(HANDSHAKE_TIMEOUT_MS * kj::MILLISECONDS, kj::mv(promise))
      .catch_([](kj::Exception&& e) -> kj::Promise<SecureConnection> {
        if (e.getType() == kj::Exception::Type::OVERLOADED) {
          return KJ_EXCEPTION(DISCONNECTED, "the handshake did not finish in time");
        }
        return kj::mv(e);
      });
}

}  // namespace

kj::Promise<SecureConnection> secureInitiate(kj::Own<kj::AsyncIoStream> raw, const crypto::Identity& me,
                                             const crypto::PublicKey& expected, kj::Timer& timer) {
  auto remoteStatic = noise::ed25519PublicToX25519(expected);
  if (!remoteStatic) return KJ_EXCEPTION(FAILED, "the peer's key is not a valid Ed25519 public key");
  noise::X25519KeyPair statics = noise::ed25519SecretToX25519(me.signingSecret());
  auto hs = kj::heap<Handshake>(kj::mv(raw), noise::HandshakeState::initiator(prologue(), statics, *remoteStatic));
  hs->remote = expected;
  Handshake& h = *hs;
  Bytes myKey(me.publicKey().begin(), me.publicKey().end());
  auto promise =
      writeFrame(*h.raw, h.state.writeMessage({}))
          .then([&h] { return readFrame(*h.raw, h.reader, h.chunk); })
          .then([&h, myKey](Bytes msg2) {
            Bytes payload = guarded("message 2 (wrong peer key, or not a kith node?)",
                                    [&] { return h.state.readMessage(msg2); });
            if (!payload.empty()) {
              kj::throwFatalException(nodeException(kj::Exception::Type::FAILED,
                                                    "secure transport failed: unexpected handshake payload in message 2"));
            }
            return writeFrame(*h.raw, h.state.writeMessage(myKey));
          })
          .then([&h]() -> kj::Promise<Bytes> {
            // The responder's status frame is the first transport message.
            return readFrame(*h.raw, h.reader, h.chunk);
          })
          .then([&h](Bytes statusFrame) -> kj::Promise<SecureConnection> {
            noise::SessionCiphers ciphers = h.state.split();
            Bytes status = guarded("the peer's status", [&] { return ciphers.receive.decryptWithAd({}, statusFrame); });
            if (status.empty()) return KJ_EXCEPTION(FAILED, "the peer sent an empty status");
            if (status[0] == STATUS_REFUSED) {
              std::string reason(status.begin() + 1, status.end());
              return nodeException(kj::Exception::Type::FAILED, "the peer refused the connection: " + reason);
            }
            if (status[0] != STATUS_ACCEPTED) return KJ_EXCEPTION(FAILED, "the peer sent an unknown status");
            noise::FrameReader rest = std::move(h.reader);
            rest.setFrameBytesMax(noise::NOISE_MESSAGE_BYTES_MAX);
            SecureConnection conn;
            conn.remote = h.remote;
            conn.stream = kj::heap<SecureStream>(kj::mv(h.raw), std::move(ciphers), std::move(rest), conn.failure);
            return kj::mv(conn);
          });
  return withTimeout(timer, promise.attach(kj::mv(hs)));
}

kj::Promise<SecureConnection> secureRespond(kj::Own<kj::AsyncIoStream> raw, const crypto::Identity& me,
                                            AcceptPeer accept, kj::Timer& timer) {
  noise::X25519KeyPair statics = noise::ed25519SecretToX25519(me.signingSecret());
  auto hs = kj::heap<Handshake>(kj::mv(raw), noise::HandshakeState::responder(prologue(), statics));
  Handshake& h = *hs;
  auto promise =
      readFrame(*h.raw, h.reader, h.chunk)
          .then([&h](Bytes msg1) {
            Bytes payload = guarded("message 1 (the peer dialled another key, or is not a kith node)",
                                    [&] { return h.state.readMessage(msg1); });
            if (!payload.empty()) {
              kj::throwFatalException(nodeException(kj::Exception::Type::FAILED,
                                                    "secure transport failed: unexpected handshake payload in message 1"));
            }
            return writeFrame(*h.raw, h.state.writeMessage({}));
          })
          .then([&h] { return readFrame(*h.raw, h.reader, h.chunk); })
          .then([&h, accept = kj::mv(accept)](Bytes msg3) -> kj::Promise<SecureConnection> {
            Bytes payload = guarded("message 3", [&] { return h.state.readMessage(msg3); });
            if (payload.size() != crypto::PUBLIC_KEY_BYTES) {
              return KJ_EXCEPTION(FAILED, "secure transport failed: message 3 does not carry an identity key");
            }
            std::memcpy(h.remote.data(), payload.data(), crypto::PUBLIC_KEY_BYTES);
            auto derived = noise::ed25519PublicToX25519(h.remote);
            Key32 authenticated = h.state.remoteStatic();
            if (!derived || sodium_memcmp(derived->data(), authenticated.data(), authenticated.size()) != 0) {
              return KJ_EXCEPTION(FAILED, "secure transport failed: the identity key does not match the handshake");
            }
            noise::SessionCiphers ciphers = h.state.split();
            std::string refusal = accept(h.remote);
            Bytes status{refusal.empty() ? STATUS_ACCEPTED : STATUS_REFUSED};
            status.insert(status.end(), refusal.begin(),
                          refusal.begin() + static_cast<std::ptrdiff_t>(std::min(refusal.size(), REFUSAL_REASON_BYTES_MAX)));
            Bytes sealed = ciphers.send.encryptWithAd({}, status);
            auto written = writeFrame(*h.raw, std::move(sealed));
            if (!refusal.empty()) {
              std::string who = toHex(h.remote).substr(0, 8);
              return written.then([refusal, who]() -> kj::Promise<SecureConnection> {
                return nodeException(kj::Exception::Type::FAILED, "refused peer " + who + ": " + refusal);
              });
            }
            return written.then([&h, ciphers = std::move(ciphers)]() mutable {
              noise::FrameReader rest = std::move(h.reader);
              rest.setFrameBytesMax(noise::NOISE_MESSAGE_BYTES_MAX);
              SecureConnection conn;
              conn.remote = h.remote;
              conn.stream = kj::heap<SecureStream>(kj::mv(h.raw), std::move(ciphers), std::move(rest), conn.failure);
              return conn;
            });
          });
  return withTimeout(timer, promise.attach(kj::mv(hs)));
}

}  // namespace kith::node
