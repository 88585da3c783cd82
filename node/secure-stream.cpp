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

constexpr bool tableInOrder() {
  for (size_t i = 0; i < std::size(TRANSPORT_FAILURES); ++i) {
    if (static_cast<size_t>(TRANSPORT_FAILURES[i].failure) != i) return false;
  }
  return true;
}
static_assert(tableInOrder(), "TRANSPORT_FAILURES has one row per TransportFailure, in order");
static_assert(std::size(TRANSPORT_FAILURES) == static_cast<size_t>(TransportFailure::CLOSED) + 1);

// Handshake messages are 48, 48 and 96 bytes; the status frame after them is at most 1 + 200 + 16.
constexpr size_t HANDSHAKE_MESSAGE_BYTES_MAX = 256;
constexpr size_t READ_CHUNK_BYTES = 64 * 1024;
constexpr uint8_t STATUS_ACCEPTED = 0;
constexpr uint8_t STATUS_REFUSED = 1;
constexpr size_t REFUSAL_REASON_BYTES_MAX = 200;

ByteView prologue() { return asBytes(noise::KITH_TRANSPORT_PROLOGUE); }

// Notes `failure` in `failed` (when the caller gave a slot) and makes the exception that says it.
kj::Exception fail(std::optional<TransportFailure>* failed, TransportFailure failure, const std::string& detail = "") {
  if (failed != nullptr) *failed = failure;
  return transportException(failure, detail);
}

// Runs `fn`, turning kith::Error (a peer's bad bytes) into the transport exception `failure`.
template <typename F>
auto guarded(std::optional<TransportFailure>* failed, TransportFailure failure, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) { kj::throwFatalException(fail(failed, failure, e.what())); }
}

class SecureStream final : public kj::AsyncIoStream {
public:
  SecureStream(kj::Own<kj::AsyncIoStream> inner, noise::SessionCiphers ciphers, noise::FrameReader leftover,
               std::shared_ptr<std::string> failure)
      : inner_(kj::mv(inner)), encoder_(std::move(ciphers.send)),
        decoder_(std::move(ciphers.receive), std::move(leftover)), failure_(kj::mv(failure)), chunk_(READ_CHUNK_BYTES) {
  }

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return readLoop(static_cast<kj::byte*>(buffer), minBytes, maxBytes, 0)
        .catch_([this](kj::Exception&& e) -> kj::Promise<size_t> {
          if (failure_->empty()) *failure_ = e.getDescription().cStr();
          return kj::mv(e);
        });
  }

  kj::Promise<void> write(const void* buffer, size_t size) override {
    if (size == 0) return kj::READY_NOW;
    Bytes frames = guarded(nullptr, TransportFailure::ENCRYPT_FAILED, [&] {
      return encoder_.encrypt({static_cast<const uint8_t*>(buffer), size});
    });
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
    Bytes frames = guarded(nullptr, TransportFailure::ENCRYPT_FAILED, [&] { return encoder_.encrypt(plain); });
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
      auto plain = guarded(nullptr, TransportFailure::DECRYPT_FAILED, [&] { return decoder_.tryNext(); });
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
            if (failure_->empty()) *failure_ = transportFailureText(TransportFailure::CLOSED);
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
kj::Promise<Bytes> readFrame(kj::AsyncIoStream& stream, noise::FrameReader& reader, Bytes& chunk,
                             std::optional<TransportFailure>* failed) {
  auto frame = guarded(failed, TransportFailure::BAD_HANDSHAKE_FRAME, [&] { return reader.tryNext(); });
  if (frame) return kj::mv(*frame);
  return stream.tryRead(chunk.data(), 1, chunk.size())
      .then([&stream, &reader, &chunk, failed](size_t n) -> kj::Promise<Bytes> {
        if (n == 0) return fail(failed, TransportFailure::CLOSED_DURING_HANDSHAKE);
        reader.feed({chunk.data(), n});
        return readFrame(stream, reader, chunk, failed);
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
  std::optional<TransportFailure>* failed;  // the caller's slot for why the handshake failed

  Handshake(kj::Own<kj::AsyncIoStream> raw, noise::HandshakeState state, std::optional<TransportFailure>* failed)
      : raw(kj::mv(raw)), state(std::move(state)), failed(failed) {}

  kj::Promise<Bytes> readFrame() { return node::readFrame(*raw, reader, chunk, failed); }
};

kj::Promise<SecureConnection> withTimeout(kj::Timer& timer, kj::Promise<SecureConnection> promise,
                                          std::optional<TransportFailure>* failed) {
  return timer.timeoutAfter(HANDSHAKE_TIMEOUT_MS * kj::MILLISECONDS, kj::mv(promise))
      .catch_([failed](kj::Exception&& e) -> kj::Promise<SecureConnection> {
        if (e.getType() == kj::Exception::Type::OVERLOADED) return fail(failed, TransportFailure::TIMED_OUT);
        return kj::mv(e);
      });
}

}  // namespace

std::string transportFailureText(TransportFailure failure, const std::string& detail) {
  std::string text = TRANSPORT_FAILURES[static_cast<size_t>(failure)].text;
  if (auto at = text.find("{}"); at != std::string::npos) text.replace(at, 2, detail);
  return text;
}

kj::Exception transportException(TransportFailure failure, const std::string& detail) {
  return nodeException(TRANSPORT_FAILURES[static_cast<size_t>(failure)].type, transportFailureText(failure, detail));
}

kj::Promise<SecureConnection> secureInitiate(kj::Own<kj::AsyncIoStream> raw, const crypto::Identity& me,
                                             const crypto::PublicKey& expected, kj::Timer& timer,
                                             std::optional<TransportFailure>* failed) {
  auto remoteStatic = noise::ed25519PublicToX25519(expected);
  if (!remoteStatic) return fail(failed, TransportFailure::INVALID_PEER_KEY);
  noise::X25519KeyPair statics = noise::ed25519SecretToX25519(me.signingSecret());
  auto hs =
      kj::heap<Handshake>(kj::mv(raw), noise::HandshakeState::initiator(prologue(), statics, *remoteStatic), failed);
  hs->remote = expected;
  Handshake& h = *hs;
  Bytes myKey(me.publicKey().begin(), me.publicKey().end());
  auto promise =
      writeFrame(*h.raw, h.state.writeMessage({}))
          .then([&h] { return h.readFrame(); })
          .then([&h, myKey](Bytes msg2) {
            Bytes payload =
                guarded(h.failed, TransportFailure::NOT_THIS_NODE, [&] { return h.state.readMessage(msg2); });
            if (!payload.empty()) kj::throwFatalException(fail(h.failed, TransportFailure::PAYLOAD_IN_MESSAGE_2));
            return writeFrame(*h.raw, h.state.writeMessage(myKey));
          })
          .then([&h]() -> kj::Promise<Bytes> {
            // The responder's status frame is the first transport message.
            return h.readFrame();
          })
          .then([&h](Bytes statusFrame) -> kj::Promise<SecureConnection> {
            noise::SessionCiphers ciphers = h.state.split();
            Bytes status = guarded(h.failed, TransportFailure::BAD_STATUS,
                                   [&] { return ciphers.receive.decryptWithAd({}, statusFrame); });
            if (status.empty()) return fail(h.failed, TransportFailure::EMPTY_STATUS);
            if (status[0] == STATUS_REFUSED) {
              return fail(h.failed, TransportFailure::REFUSED, std::string(status.begin() + 1, status.end()));
            }
            if (status[0] != STATUS_ACCEPTED) return fail(h.failed, TransportFailure::UNKNOWN_STATUS);
            noise::FrameReader rest = std::move(h.reader);
            rest.setFrameBytesMax(noise::NOISE_MESSAGE_BYTES_MAX);
            SecureConnection conn;
            conn.remote = h.remote;
            conn.stream = kj::heap<SecureStream>(kj::mv(h.raw), std::move(ciphers), std::move(rest), conn.failure);
            return kj::mv(conn);
          });
  return withTimeout(timer, promise.attach(kj::mv(hs)), failed);
}

kj::Promise<SecureConnection> secureRespond(kj::Own<kj::AsyncIoStream> raw, const crypto::Identity& me,
                                            AcceptPeer accept, kj::Timer& timer) {
  noise::X25519KeyPair statics = noise::ed25519SecretToX25519(me.signingSecret());
  auto hs = kj::heap<Handshake>(kj::mv(raw), noise::HandshakeState::responder(prologue(), statics), nullptr);
  Handshake& h = *hs;
  auto promise =
      h.readFrame()
          .then([&h](Bytes msg1) {
            Bytes payload =
                guarded(h.failed, TransportFailure::NOT_FOR_THIS_NODE, [&] { return h.state.readMessage(msg1); });
            if (!payload.empty()) kj::throwFatalException(fail(h.failed, TransportFailure::PAYLOAD_IN_MESSAGE_1));
            return writeFrame(*h.raw, h.state.writeMessage({}));
          })
          .then([&h] { return h.readFrame(); })
          .then([&h, accept = kj::mv(accept)](Bytes msg3) -> kj::Promise<SecureConnection> {
            Bytes payload =
                guarded(h.failed, TransportFailure::BAD_MESSAGE_3, [&] { return h.state.readMessage(msg3); });
            if (payload.size() != crypto::PUBLIC_KEY_BYTES) return fail(h.failed, TransportFailure::NO_IDENTITY_KEY);
            std::memcpy(h.remote.data(), payload.data(), crypto::PUBLIC_KEY_BYTES);
            auto derived = noise::ed25519PublicToX25519(h.remote);
            Key32 authenticated = h.state.remoteStatic();
            if (!derived || sodium_memcmp(derived->data(), authenticated.data(), authenticated.size()) != 0) {
              return fail(h.failed, TransportFailure::IDENTITY_KEY_MISMATCH);
            }
            noise::SessionCiphers ciphers = h.state.split();
            std::string refusal = accept(h.remote);
            Bytes status{refusal.empty() ? STATUS_ACCEPTED : STATUS_REFUSED};
            status.insert(
                status.end(), refusal.begin(),
                refusal.begin() + static_cast<std::ptrdiff_t>(std::min(refusal.size(), REFUSAL_REASON_BYTES_MAX)));
            Bytes sealed = ciphers.send.encryptWithAd({}, status);
            auto written = writeFrame(*h.raw, std::move(sealed));
            if (!refusal.empty()) {
              std::string who = toHex(h.remote).substr(0, 8);
              return written.then([refusal, who]() -> kj::Promise<SecureConnection> {
                return transportException(TransportFailure::REFUSED_PEER, who + ": " + refusal);
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
  return withTimeout(timer, promise.attach(kj::mv(hs)), nullptr);
}

}  // namespace kith::node
