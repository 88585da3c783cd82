// Noise XK against the cacophony vectors, its error paths, and the transport framing.
#include <sodium.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "crypto/noise.h"
#include "tests/support/errors.h"
#include "tests/support/hex.h"

using namespace kith;
using namespace kith::crypto;
using namespace kith::crypto::noise;

namespace {

using kith::test::errorKindOf;
using kith::test::unhex;

Bytes bytesOf(std::string_view text) {
  ByteView view = asBytes(text);
  return Bytes(view.begin(), view.end());
}

nlohmann::json loadVectors() {
  std::ifstream in(std::string(KITH_SOURCE_DIR) + "/tests/crypto/vectors/noise-xk.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in)["vectors"];
}

Bytes concat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// Two nodes with fresh static keys, and a handshake between them in progress.
struct Pair {
  X25519KeyPair initiatorStatic = X25519KeyPair::generate();
  X25519KeyPair responderStatic = X25519KeyPair::generate();
  HandshakeState initiator =
      HandshakeState::initiator(asBytes(KITH_TRANSPORT_PROLOGUE), initiatorStatic, responderStatic.publicKey);
  HandshakeState responder = HandshakeState::responder(asBytes(KITH_TRANSPORT_PROLOGUE), responderStatic);
};

const Bytes PAYLOAD = bytesOf("hello");

// Runs messages 1..count of the handshake and returns them.
std::vector<Bytes> runHandshake(Pair& pair, size_t count) {
  std::vector<Bytes> messages;
  for (size_t i = 0; i < count; ++i) {
    HandshakeState& writer = i % 2 == 0 ? pair.initiator : pair.responder;
    HandshakeState& reader = i % 2 == 0 ? pair.responder : pair.initiator;
    messages.push_back(writer.writeMessage(PAYLOAD));
    REQUIRE(reader.readMessage(messages.back()) == PAYLOAD);
  }
  return messages;
}

struct Transports {
  TransportEncoder initiatorOut, responderOut;
  TransportDecoder initiatorIn, responderIn;
};

Transports connect(Pair& pair) {
  runHandshake(pair, 3);
  SessionCiphers i = pair.initiator.split();
  SessionCiphers r = pair.responder.split();
  return {TransportEncoder(std::move(i.send)), TransportEncoder(std::move(r.send)),
          TransportDecoder(std::move(i.receive)), TransportDecoder(std::move(r.receive))};
}

}  // namespace

TEST_CASE("Noise XK reproduces the cacophony vectors", "[crypto][noise]") {
  nlohmann::json vectors = loadVectors();
  REQUIRE(vectors.size() == 2);
  for (const auto& v : vectors) {
    std::string name = v["protocol_name"];
    INFO(name);
    NoiseHash hash = name.ends_with("BLAKE2b") ? NoiseHash::BLAKE2B : NoiseHash::SHA256;
    REQUIRE(protocolName(hash) == name);

    X25519KeyPair initiatorStatic = X25519KeyPair::fromSecret(unhex(v["init_static"].get<std::string>()));
    X25519KeyPair responderStatic = X25519KeyPair::fromSecret(unhex(v["resp_static"].get<std::string>()));
    REQUIRE(toHex(responderStatic.publicKey) == v["init_remote_static"]);
    HandshakeState initiator = HandshakeState::initiator(
        unhex(v["init_prologue"].get<std::string>()), initiatorStatic, responderStatic.publicKey,
        {X25519KeyPair::fromSecret(unhex(v["init_ephemeral"].get<std::string>())), hash});
    HandshakeState responder =
        HandshakeState::responder(unhex(v["resp_prologue"].get<std::string>()), responderStatic,
                                  {X25519KeyPair::fromSecret(unhex(v["resp_ephemeral"].get<std::string>())), hash});

    const auto& messages = v["messages"];
    REQUIRE(messages.size() == 6);
    // Handshake: messages alternate, initiator first. Each side reads the published bytes, so
    // reading is checked independently of writing.
    for (size_t i = 0; i < 3; ++i) {
      INFO("handshake message " << i + 1);
      HandshakeState& writer = i % 2 == 0 ? initiator : responder;
      HandshakeState& reader = i % 2 == 0 ? responder : initiator;
      Bytes payload = unhex(messages[i]["payload"].get<std::string>());
      Bytes expected = unhex(messages[i]["ciphertext"].get<std::string>());
      REQUIRE(writer.isWriteTurn());
      REQUIRE_FALSE(reader.isWriteTurn());
      CHECK(toHex(writer.writeMessage(payload)) == toHex(expected));
      CHECK(reader.readMessage(expected) == payload);
    }
    REQUIRE(initiator.isComplete());
    REQUIRE(responder.isComplete());
    CHECK(toHex(initiator.handshakeHash()) == v["handshake_hash"]);
    CHECK(toHex(responder.handshakeHash()) == v["handshake_hash"]);
    CHECK(responder.remoteStatic() == initiatorStatic.publicKey);

    // Transport: the alternation continues, so message 4 goes from the responder to the initiator.
    SessionCiphers i = initiator.split();
    SessionCiphers r = responder.split();
    TransportEncoder initiatorOut(std::move(i.send)), responderOut(std::move(r.send));
    TransportDecoder initiatorIn(std::move(i.receive)), responderIn(std::move(r.receive));
    for (size_t n = 3; n < 6; ++n) {
      INFO("transport message " << n + 1);
      bool fromInitiator = n % 2 == 0;
      Bytes payload = unhex(messages[n]["payload"].get<std::string>());
      Bytes expected = frame(unhex(messages[n]["ciphertext"].get<std::string>()));
      TransportEncoder& out = fromInitiator ? initiatorOut : responderOut;
      TransportDecoder& in = fromInitiator ? responderIn : initiatorIn;
      CHECK(toHex(out.encrypt(payload)) == toHex(expected));
      in.feed(expected);
      CHECK(in.tryNext() == payload);
    }
  }
}

TEST_CASE("Noise XK between fresh keys agrees on the session", "[crypto][noise]") {
  Pair pair;
  CHECK(pair.initiator.isWriteTurn());
  CHECK_FALSE(pair.responder.isWriteTurn());
  CHECK(pair.initiator.remoteStatic() == pair.responderStatic.publicKey);
  std::vector<Bytes> messages = runHandshake(pair, 3);
  CHECK(messages[0].size() == 32 + PAYLOAD.size() + 16);
  CHECK(messages[1].size() == 32 + PAYLOAD.size() + 16);
  CHECK(messages[2].size() == 48 + PAYLOAD.size() + 16);
  CHECK(pair.initiator.isComplete());
  CHECK(pair.responder.isComplete());
  CHECK_FALSE(pair.initiator.isWriteTurn());
  CHECK(pair.responder.remoteStatic() == pair.initiatorStatic.publicKey);
  CHECK(pair.initiator.handshakeHash() == pair.responder.handshakeHash());
  CHECK(pair.initiator.handshakeHash().size() == 64);
}

TEST_CASE("Noise XK refuses a flipped bit in any handshake message", "[crypto][noise]") {
  for (size_t index = 0; index < 3; ++index) {
    size_t messageBytes = (index == 2 ? 48 : 32) + PAYLOAD.size() + 16;
    for (size_t position = 0; position < messageBytes; ++position) {
      for (uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
        INFO("message " << index + 1 << " byte " << position << " bit " << int(bit));
        Pair pair;
        runHandshake(pair, index);
        HandshakeState& writer = index % 2 == 0 ? pair.initiator : pair.responder;
        HandshakeState& reader = index % 2 == 0 ? pair.responder : pair.initiator;
        Bytes message = writer.writeMessage(PAYLOAD);
        REQUIRE(message.size() == messageBytes);
        message[position] ^= bit;
        CHECK(errorKindOf([&] { (void)reader.readMessage(message); }) == ErrorKind::AUTH);
      }
    }
  }
}

TEST_CASE("Noise XK fails at message 1 when the initiator has the wrong responder key", "[crypto][noise]") {
  X25519KeyPair initiatorStatic = X25519KeyPair::generate();
  X25519KeyPair responderStatic = X25519KeyPair::generate();
  X25519KeyPair someoneElse = X25519KeyPair::generate();
  HandshakeState initiator =
      HandshakeState::initiator(asBytes(KITH_TRANSPORT_PROLOGUE), initiatorStatic, someoneElse.publicKey);
  HandshakeState responder = HandshakeState::responder(asBytes(KITH_TRANSPORT_PROLOGUE), responderStatic);
  Bytes message = initiator.writeMessage({});  // even an empty payload carries a tag
  CHECK(errorKindOf([&] { (void)responder.readMessage(message); }) == ErrorKind::AUTH);
}

TEST_CASE("Noise XK fails at message 1 when the prologues differ", "[crypto][noise]") {
  X25519KeyPair initiatorStatic = X25519KeyPair::generate();
  X25519KeyPair responderStatic = X25519KeyPair::generate();
  HandshakeState initiator =
      HandshakeState::initiator(asBytes("kith/transport/v2"), initiatorStatic, responderStatic.publicKey);
  HandshakeState responder = HandshakeState::responder(asBytes(KITH_TRANSPORT_PROLOGUE), responderStatic);
  Bytes message = initiator.writeMessage({});
  CHECK(errorKindOf([&] { (void)responder.readMessage(message); }) == ErrorKind::AUTH);
}

TEST_CASE("Noise XK refuses truncated and oversized handshake messages", "[crypto][noise]") {
  for (size_t index = 0; index < 3; ++index) {
    Pair probe;
    runHandshake(probe, index);
    size_t fullBytes = (index % 2 == 0 ? probe.initiator : probe.responder).writeMessage(PAYLOAD).size();
    for (size_t length :
         {size_t{0}, size_t{31}, size_t{32}, size_t{47}, size_t{63}, fullBytes - 1, NOISE_MESSAGE_BYTES_MAX + 1}) {
      INFO("message " << index + 1 << " cut to " << length << " of " << fullBytes);
      Pair pair;
      runHandshake(pair, index);
      HandshakeState& writer = index % 2 == 0 ? pair.initiator : pair.responder;
      HandshakeState& reader = index % 2 == 0 ? pair.responder : pair.initiator;
      Bytes message = writer.writeMessage(PAYLOAD);
      message.resize(length);  // grows with zeros for the oversized case
      CHECK(errorKindOf([&] { (void)reader.readMessage(message); }) == ErrorKind::AUTH);
    }
  }
}

TEST_CASE("Noise XK: message 1 replayed to a new responder cannot be completed", "[crypto][noise]") {
  Pair pair;
  std::vector<Bytes> messages = runHandshake(pair, 3);
  // XK's message 1 is replayable (documented), but the new responder picks a new ephemeral, so the
  // original message 3 doesn't authenticate under the new session.
  HandshakeState replayed = HandshakeState::responder(asBytes(KITH_TRANSPORT_PROLOGUE), pair.responderStatic);
  CHECK(replayed.readMessage(messages[0]) == PAYLOAD);
  Bytes message2 = replayed.writeMessage(PAYLOAD);
  CHECK(message2 != messages[1]);
  CHECK(errorKindOf([&] { (void)replayed.readMessage(messages[2]); }) == ErrorKind::AUTH);
}

TEST_CASE("Noise XK refuses low-order public keys", "[crypto][noise]") {
  X25519KeyPair keys = X25519KeyPair::generate();
  Key32 zero{};  // the all-zero point has order 4; X25519 with it gives all zeros
  HandshakeState initiator = HandshakeState::initiator(asBytes(KITH_TRANSPORT_PROLOGUE), keys, zero);
  CHECK(errorKindOf([&] { (void)initiator.writeMessage({}); }) == ErrorKind::AUTH);

  HandshakeState responder = HandshakeState::responder(asBytes(KITH_TRANSPORT_PROLOGUE), keys);
  Bytes message(32 + 16, 0);
  CHECK(errorKindOf([&] { (void)responder.readMessage(message); }) == ErrorKind::AUTH);
}

TEST_CASE("Noise keys: Ed25519 identities convert to X25519 statics", "[crypto][noise]") {
  Key32 edPublic;
  SecretBuffer edSecret(crypto_sign_SECRETKEYBYTES);
  REQUIRE(crypto_sign_keypair(edPublic.data(), edSecret.data()) == 0);
  X25519KeyPair converted = ed25519SecretToX25519(edSecret.view());
  auto convertedPublic = ed25519PublicToX25519(edPublic);
  REQUIRE(convertedPublic.has_value());
  CHECK(converted.publicKey == *convertedPublic);
  CHECK(converted.secretKey.size() == 32);

  // A handshake keyed by converted identities completes.
  X25519KeyPair other = X25519KeyPair::generate();
  HandshakeState initiator = HandshakeState::initiator(asBytes(KITH_TRANSPORT_PROLOGUE), other, *convertedPublic);
  HandshakeState responder = HandshakeState::responder(asBytes(KITH_TRANSPORT_PROLOGUE), converted);
  CHECK(responder.readMessage(initiator.writeMessage({})).empty());
  CHECK(initiator.readMessage(responder.writeMessage({})).empty());
  Bytes identityPayload(edPublic.begin(), edPublic.end());
  CHECK(responder.readMessage(initiator.writeMessage(edPublic)) == identityPayload);
  CHECK(initiator.handshakeHash() == responder.handshakeHash());

  Key32 identityPoint{};
  identityPoint[0] = 1;  // the neutral element: small order, refused
  CHECK_FALSE(ed25519PublicToX25519(identityPoint).has_value());
  CHECK(errorKindOf([&] { (void)ed25519SecretToX25519(edSecret.view().first(32)); }) == ErrorKind::INPUT);
  CHECK(errorKindOf([&] { (void)X25519KeyPair::fromSecret(Bytes(31, 7)); }) == ErrorKind::INPUT);
}

TEST_CASE("SecretBuffer owns, copies explicitly and moves", "[crypto][noise]") {
  SecretBuffer a = SecretBuffer::copyOf(bytesOf("secret"));
  REQUIRE(a.size() == 6);
  CHECK(asChars(a.view()) == "secret");
  SecretBuffer b = std::move(a);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(a.data() == nullptr);
  CHECK(asChars(b.view()) == "secret");
  b = SecretBuffer(3);
  CHECK(b.size() == 3);
}

TEST_CASE("Noise CipherState ends the session before the reserved nonce", "[crypto][noise]") {
  Bytes key(32, 0x42);
  CipherState sender(key);
  CipherState receiver(key);
  sender.setNonce(UINT64_MAX - 1);
  receiver.setNonce(UINT64_MAX - 1);
  Bytes last = sender.encryptWithAd({}, PAYLOAD);
  CHECK(receiver.decryptWithAd({}, last) == PAYLOAD);
  CHECK(errorKindOf([&] { (void)sender.encryptWithAd({}, PAYLOAD); }) == ErrorKind::AUTH);
  CHECK(errorKindOf([&] { (void)receiver.decryptWithAd({}, last); }) == ErrorKind::AUTH);

  CipherState fresh(key);
  CHECK(errorKindOf([&] { (void)fresh.decryptWithAd({}, Bytes(15, 0)); }) == ErrorKind::AUTH);
  CHECK(fresh.nonce() == 0);  // a failed decryption doesn't advance the nonce
}

TEST_CASE("Noise transport frames round-trip in both directions", "[crypto][noise]") {
  Pair pair;
  Transports t = connect(pair);
  for (int round = 0; round < 3; ++round) {
    Bytes up = bytesOf("from the initiator " + std::to_string(round));
    Bytes down = bytesOf("from the responder " + std::to_string(round));
    Bytes upFrame = t.initiatorOut.encrypt(up);
    CHECK(upFrame.size() == 2 + up.size() + 16);
    CHECK(upFrame[0] == 0);
    CHECK(upFrame[1] == up.size() + 16);
    t.responderIn.feed(upFrame);
    CHECK(t.responderIn.tryNext() == up);
    t.initiatorIn.feed(t.responderOut.encrypt(down));
    CHECK(t.initiatorIn.tryNext() == down);
  }
  CHECK_FALSE(t.responderIn.tryNext().has_value());

  // An empty plaintext is one frame; a long one is split at the transport limit.
  t.responderIn.feed(t.initiatorOut.encrypt({}));
  CHECK(t.responderIn.tryNext() == Bytes{});
  Bytes big(TRANSPORT_PAYLOAD_BYTES_MAX + 10, 0x5a);
  Bytes frames = t.initiatorOut.encrypt(big);
  CHECK(frames.size() == big.size() + 2 * (2 + 16));
  t.responderIn.feed(frames);
  auto first = t.responderIn.tryNext();
  auto second = t.responderIn.tryNext();
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK(first->size() == TRANSPORT_PAYLOAD_BYTES_MAX);
  CHECK(concat(*first, *second) == big);
}

TEST_CASE("Noise transport decoder accepts frames a byte at a time", "[crypto][noise]") {
  Pair pair;
  Transports t = connect(pair);
  // Two statements: the nonce order must not depend on argument evaluation order.
  Bytes stream = t.initiatorOut.encrypt(bytesOf("one"));
  stream = concat(stream, t.initiatorOut.encrypt(bytesOf("two")));
  std::vector<Bytes> received;
  for (size_t i = 0; i < stream.size(); ++i) {
    t.responderIn.feed(ByteView(&stream[i], 1));
    while (auto plaintext = t.responderIn.tryNext()) received.push_back(*plaintext);
    // A frame is yielded exactly when its last byte arrives.
    CHECK(received.size() == (i + 1 >= stream.size() ? 2u : i + 1 >= 2 + 3 + 16 ? 1u : 0u));
  }
  CHECK(received == std::vector<Bytes>{bytesOf("one"), bytesOf("two")});
}

TEST_CASE("Noise transport refuses a flipped bit in a frame", "[crypto][noise]") {
  size_t frameBytes = 2 + PAYLOAD.size() + 16;
  // The header is left alone: a changed length shows up as a short or misaligned frame later.
  for (size_t position = 2; position < frameBytes; ++position) {
    INFO("byte " << position);
    Pair pair;
    Transports t = connect(pair);
    Bytes tampered = t.initiatorOut.encrypt(PAYLOAD);
    REQUIRE(tampered.size() == frameBytes);
    tampered[position] ^= 0x01;
    t.responderIn.feed(tampered);
    CHECK(errorKindOf([&] { (void)t.responderIn.tryNext(); }) == ErrorKind::AUTH);
  }
}

TEST_CASE("Noise transport refuses oversized and undersized frames", "[crypto][noise]") {
  FrameReader reader(100);
  reader.feed(Bytes{0x00, 101});  // refused from the header alone, before any body arrives
  CHECK(errorKindOf([&] { (void)reader.tryNext(); }) == ErrorKind::AUTH);

  FrameReader exact(100);
  exact.feed(concat(Bytes{0x00, 100}, Bytes(100, 1)));
  CHECK(exact.tryNext() == Bytes(100, 1));

  Pair pair;
  Transports t = connect(pair);
  t.responderIn.feed(Bytes{0x00, 15});
  t.responderIn.feed(Bytes(15, 0));
  CHECK(errorKindOf([&] { (void)t.responderIn.tryNext(); }) == ErrorKind::AUTH);
}

TEST_CASE("Noise transport refuses replayed and reordered frames", "[crypto][noise]") {
  SECTION("replayed") {
    Pair pair;
    Transports t = connect(pair);
    Bytes first = t.initiatorOut.encrypt(bytesOf("one"));
    t.responderIn.feed(first);
    CHECK(t.responderIn.tryNext() == bytesOf("one"));
    t.responderIn.feed(first);
    CHECK(errorKindOf([&] { (void)t.responderIn.tryNext(); }) == ErrorKind::AUTH);
  }
  SECTION("reordered") {
    Pair pair;
    Transports t = connect(pair);
    Bytes first = t.initiatorOut.encrypt(bytesOf("one"));
    Bytes second = t.initiatorOut.encrypt(bytesOf("two"));
    t.responderIn.feed(second);
    CHECK(errorKindOf([&] { (void)t.responderIn.tryNext(); }) == ErrorKind::AUTH);
  }
  SECTION("reflected back to its sender") {
    Pair pair;
    Transports t = connect(pair);
    t.initiatorIn.feed(t.initiatorOut.encrypt(bytesOf("one")));
    CHECK(errorKindOf([&] { (void)t.initiatorIn.tryNext(); }) == ErrorKind::AUTH);
  }
}

TEST_CASE("Noise transport takes over bytes that arrived behind message 3", "[crypto][noise]") {
  Pair pair;
  runHandshake(pair, 2);
  Bytes message3 = pair.initiator.writeMessage({});
  SessionCiphers i = pair.initiator.split();
  TransportEncoder initiatorOut(std::move(i.send));
  // Message 3 and the first transport frame arrive in one read, as they may over TCP. The
  // handshake's small frame limit must not apply to the transport frame behind it.
  Bytes big(1000, 0x33);
  Bytes wire = concat(frame(message3), initiatorOut.encrypt(big));
  FrameReader reader(message3.size());
  reader.feed(wire);
  auto handshakeFrame = reader.tryNext();
  REQUIRE(handshakeFrame.has_value());
  CHECK(pair.responder.readMessage(*handshakeFrame).empty());
  SessionCiphers r = pair.responder.split();
  TransportDecoder responderIn(std::move(r.receive), std::move(reader));
  CHECK(responderIn.tryNext() == big);
}
