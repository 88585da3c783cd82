// The secure transport over real TCP on loopback: the Noise XK handshake between real identities,
// data both ways through SecureStream, and every way a handshake or a stream can go wrong (wrong
// key, refusal, garbage, truncation, silence, replay, a flipped bit anywhere). Each failure must
// end the connection with a reason, never hang, and never hand corrupted bytes to a reader.

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include <catch2/catch.hpp>

#include "crypto/noise.h"
#include "tests/node/node-fixture.h"

namespace kith::node::test {
namespace {

namespace noise = crypto::noise;

constexpr size_t TRANSFER_BYTES = 4 * 1024 * 1024;
constexpr size_t READ_CHUNK_BYTES = 64 * 1024;
// Handshake bytes on the wire, each message behind its 2-byte length (specs/transport.md).
constexpr size_t MSG1_WIRE = 2 + 48;
constexpr size_t MSG2_WIRE = 2 + 48;
constexpr size_t MSG3_WIRE = 2 + 96;
constexpr size_t TRANSPORT_FRAME_WIRE_MAX = 2 + noise::NOISE_MESSAGE_BYTES_MAX;

kj::Array<kj::byte> randomData(size_t size, uint64_t seed) {
  // libsodium's deterministic generator: the same seed gives the same bytes.
  unsigned char key[randombytes_SEEDBYTES] = {};
  std::memcpy(key, &seed, sizeof seed);
  auto out = kj::heapArray<kj::byte>(size);
  randombytes_buf_deterministic(out.begin(), out.size(), key);
  return out;
}

std::string describe(const std::string& what) { return what.empty() ? "(none)" : what; }

// What one end of a connection saw.
struct Endpoint {
  bool handshakeOk = false;
  std::string handshakeError;  // the handshake promise's exception
  crypto::PublicKey remote{};
  size_t delivered = 0;   // plaintext bytes handed to the reader
  bool intact = true;     // every delivered byte was the one sent
  std::string readError;  // a read's exception
  std::string failure;    // SecureConnection.failure when the stream ended
  std::string writeError;

  // Why this end stopped early; empty when it got everything.
  std::string reason() const {
    if (!handshakeError.empty()) return handshakeError;
    if (!readError.empty()) return readError;
    return failure;
  }
};

struct Side {
  SecureConnection conn;
  kj::Maybe<kj::Promise<void>> writing;  // declared after conn: destroyed first
  kj::ArrayPtr<const kj::byte> expected;
  kj::Array<kj::byte> buffer = kj::heapArray<kj::byte>(READ_CHUNK_BYTES);
  Endpoint result;
};

kj::Promise<void> readChecked(Side& side) {
  if (side.result.delivered == side.expected.size()) return kj::READY_NOW;
  return side.conn.stream->tryRead(side.buffer.begin(), 1, side.buffer.size())
      .then([&side](size_t n) -> kj::Promise<void> {
        if (n == 0) return kj::READY_NOW;  // end of stream: the failure string says why
        size_t pos = side.result.delivered;
        if (pos + n > side.expected.size() || std::memcmp(side.buffer.begin(), side.expected.begin() + pos, n) != 0) {
          side.result.intact = false;
        }
        side.result.delivered += n;
        if (!side.result.intact) return kj::READY_NOW;
        return readChecked(side);
      });
}

// Runs one end: the handshake, then writes `send` while reading and checking `expect`. On any
// failure the end drops its connection at once, as a node does.
kj::Promise<Endpoint> runEnd(kj::Promise<SecureConnection> handshake, kj::ArrayPtr<const kj::byte> send,
                             kj::ArrayPtr<const kj::byte> expect) {
  return handshake.then(
      [send, expect](SecureConnection conn) -> kj::Promise<Endpoint> {
        auto side = kj::heap<Side>();
        Side& s = *side;
        s.conn = kj::mv(conn);
        s.expected = expect;
        s.result.handshakeOk = true;
        s.result.remote = s.conn.remote;
        if (send.size() > 0) {
          s.writing = s.conn.stream->write(send.begin(), send.size())
                          .catch_([&s](kj::Exception&& e) { s.result.writeError = e.getDescription().cStr(); })
                          .eagerlyEvaluate(nullptr);
        }
        return readChecked(s)
            .then(
                [&s]() -> kj::Promise<void> {
                  if (s.result.delivered == s.expected.size() && s.result.intact) {
                    KJ_IF_MAYBE(w, s.writing) {
                      auto p = kj::mv(*w);
                      s.writing = nullptr;
                      return p;
                    }
                  }
                  return kj::READY_NOW;
                },
                [&s](kj::Exception&& e) { s.result.readError = e.getDescription().cStr(); })
            .then([&s]() {
              s.result.failure = *s.conn.failure;
              if (s.result.delivered != s.expected.size() || !s.result.intact) {
                s.writing = nullptr;
                s.conn.stream = nullptr;  // drop the connection now: the peer must learn of it
              }
              return kj::mv(s.result);
            })
            .attach(kj::mv(side));
      },
      [](kj::Exception&& e) {
        Endpoint r;
        r.handshakeError = e.getDescription().cStr();
        if (r.handshakeError.empty()) r.handshakeError = "(exception without a description)";
        return r;
      });
}

struct Pair {
  Endpoint initiator;
  Endpoint responder;
};

// One connection through `viaPort` (a proxy, or the listener itself), each end sending its data.
Pair runConnection(
    UvIoContext& io, UvListener& listener, uint16_t viaPort, const crypto::Identity& client,
    const crypto::Identity& server, const crypto::PublicKey& expectedServer, kj::ArrayPtr<const kj::byte> clientData,
    kj::ArrayPtr<const kj::byte> serverData,
    AcceptPeer accept = [](const crypto::PublicKey&) { return std::string(); }) {
  auto& port = io.getPort();
  auto& timer = io.getTimer();
  auto responder = listener.accept().then([&server, &timer, accept](kj::Own<UvStream> stream) {
    return secureRespond(kj::mv(stream), server, accept, timer);
  });
  auto initiator =
      connect(port, "127.0.0.1", viaPort).then([&client, &timer, expectedServer](kj::Own<UvStream> stream) {
        return secureInitiate(kj::mv(stream), client, expectedServer, timer);
      });
  auto both = kj::joinPromises(
      kj::arr(runEnd(kj::mv(initiator), clientData, serverData), runEnd(kj::mv(responder), serverData, clientData)));
  auto ends = waitWithin(io, kj::mv(both));
  return {kj::mv(ends[0]), kj::mv(ends[1])};
}

// A valid message 1 to `responder`, framed, from a fresh initiator.
Bytes framedMessage1(const crypto::Identity& initiator, const crypto::PublicKey& responder) {
  auto rs = noise::ed25519PublicToX25519(responder);
  REQUIRE(rs.has_value());
  auto hs = noise::HandshakeState::initiator(asBytes(noise::KITH_TRANSPORT_PROLOGUE),
                                             noise::ed25519SecretToX25519(initiator.signingSecret()), *rs);
  return noise::frame(hs.writeMessage({}));
}

// Reads until end of stream or `limit` bytes; returns what came.
kj::Promise<Bytes> readAll(UvStream& stream, size_t limit) {
  auto out = kj::heap<Bytes>();
  auto buffer = kj::heapArray<kj::byte>(4096);
  struct Loop {
    static kj::Promise<void> step(UvStream& s, Bytes& out, kj::ArrayPtr<kj::byte> buf, size_t limit) {
      if (out.size() >= limit) return kj::READY_NOW;
      return s.tryRead(buf.begin(), 1, buf.size()).then([&s, &out, buf, limit](size_t n) -> kj::Promise<void> {
        if (n == 0) return kj::READY_NOW;
        out.insert(out.end(), buf.begin(), buf.begin() + n);
        return step(s, out, buf, limit);
      });
    }
  };
  auto& ref = *out;
  auto bufPtr = buffer.asPtr();
  return Loop::step(stream, ref, bufPtr, limit)
      .then([out = kj::mv(out)]() mutable { return kj::mv(*out); })
      .attach(kj::mv(buffer));
}

}  // namespace

TEST_CASE("secure transport: handshake authenticates both sides and carries 4 MiB each way", "[node][transport]") {
  UvIoContext io;
  auto client = crypto::Identity::generate();
  auto server = crypto::Identity::generate();
  uint64_t seed = testSeed("transport 4 MiB");
  auto toServer = randomData(TRANSFER_BYTES, seed);
  auto toClient = randomData(TRANSFER_BYTES, seed + 1);
  // A recognisable sentence in the plaintext, to look for in the captured traffic.
  const std::string sentence = "Mum's surgery went well, she is home on Thursday";
  std::memcpy(toServer.begin() + 1000, sentence.data(), sentence.size());
  std::memcpy(toClient.begin() + TRANSFER_BYTES / 2, sentence.data(), sentence.size());

  std::vector<crypto::PublicKey> askedAbout;
  {
    UvListener listener(io.getPort(), "127.0.0.1", 0);
    TcpProxy proxy(io.getPort(), listener.getPort(), std::nullopt, /*capture=*/true);
    auto pair = runConnection(io, listener, proxy.port(), client, server, server.publicKey(), toServer, toClient,
                              [&askedAbout](const crypto::PublicKey& peer) {
                                askedAbout.push_back(peer);
                                return std::string();
                              });
    INFO("initiator: " << describe(pair.initiator.reason()) << "; responder: " << describe(pair.responder.reason()));
    REQUIRE(pair.initiator.handshakeOk);
    REQUIRE(pair.responder.handshakeOk);
    CHECK(pair.initiator.remote == server.publicKey());
    CHECK(pair.responder.remote == client.publicKey());
    REQUIRE(askedAbout.size() == 1);
    CHECK(askedAbout[0] == client.publicKey());
    CHECK(pair.initiator.delivered == TRANSFER_BYTES);
    CHECK(pair.initiator.intact);
    CHECK(pair.responder.delivered == TRANSFER_BYTES);
    CHECK(pair.responder.intact);
    CHECK(pair.initiator.writeError.empty());
    CHECK(pair.responder.writeError.empty());

    // The wire carried ciphertext only: framing overhead, and no trace of the sentence.
    CHECK(proxy.bytes(true) > TRANSFER_BYTES);
    CHECK(proxy.bytes(true) < TRANSFER_BYTES + TRANSFER_BYTES / 100);
    for (bool dir : {true, false}) {
      const Bytes& wire = proxy.captured(dir);
      REQUIRE(wire.size() == proxy.bytes(dir));
      auto found = std::search(wire.begin(), wire.end(), sentence.begin(), sentence.end());
      CHECK(found == wire.end());
    }
  }
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("secure transport: an initiator expecting another key is refused, both sides fail fast",
          "[node][transport]") {
  UvIoContext io;
  auto client = crypto::Identity::generate();
  auto server = crypto::Identity::generate();
  auto someoneElse = crypto::Identity::generate();
  {
    UvListener listener(io.getPort(), "127.0.0.1", 0);
    auto pair = runConnection(io, listener, listener.getPort(), client, server, someoneElse.publicKey(), {}, {});
    CHECK_FALSE(pair.initiator.handshakeOk);
    CHECK_FALSE(pair.responder.handshakeOk);
    CHECK_THAT(pair.responder.handshakeError, Catch::Contains("message 1"));
    CHECK_THAT(pair.responder.handshakeError, Catch::Contains("authenticate"));
    CHECK_FALSE(pair.initiator.handshakeError.empty());
    // Ended by the responder's close, not by the handshake timeout.
    CHECK_THAT(pair.initiator.handshakeError, !Catch::Contains("in time"));
    CHECK_THAT(pair.responder.handshakeError, !Catch::Contains("in time"));
  }
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("secure transport: a refusing responder's reason reaches the initiator, nothing else passes",
          "[node][transport]") {
  UvIoContext io;
  auto client = crypto::Identity::generate();
  auto server = crypto::Identity::generate();
  const std::string reason = "you are not a member of any journal on this node";
  auto data = randomData(1024, 7);
  {
    UvListener listener(io.getPort(), "127.0.0.1", 0);
    TcpProxy proxy(io.getPort(), listener.getPort());
    auto pair = runConnection(io, listener, proxy.port(), client, server, server.publicKey(), data, data,
                              [&](const crypto::PublicKey& peer) {
                                return peer == client.publicKey() ? reason : std::string("wrong key asked about");
                              });
    CHECK_FALSE(pair.initiator.handshakeOk);
    CHECK_FALSE(pair.responder.handshakeOk);
    CHECK_THAT(pair.initiator.handshakeError, Catch::Contains("refused the connection: " + reason));
    CHECK_THAT(pair.responder.handshakeError, Catch::Contains(reason));
    // Both ends closed; the proxy saw the three handshake messages and the status frame, no more.
    REQUIRE(waitFor(io, [&] { return proxy.openConnections() == 0; }));
    CHECK(proxy.bytes(true) == MSG1_WIRE + MSG3_WIRE);
    CHECK(proxy.bytes(false) == MSG2_WIRE + 2 + 1 + reason.size() + noise::TAG_BYTES);
  }
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("secure transport: garbage instead of a handshake is refused with a reason", "[node][transport]") {
  UvIoContext io;
  auto& port = io.getPort();
  auto& ws = io.getWaitScope();
  auto server = crypto::Identity::generate();
  auto client = crypto::Identity::generate();
  UvListener listener(port, "127.0.0.1", 0);

  SECTION("an HTTP request to a responder") {
    auto responder = settle(listener.accept().then([&](kj::Own<UvStream> s) {
      return secureRespond(
          kj::mv(s), server, [](const crypto::PublicKey&) { return std::string(); }, port.getTimer());
    }));
    auto raw = connect(port, "127.0.0.1", listener.getPort()).wait(ws);
    std::string request = "GET / HTTP/1.1\r\nHost: kith\r\n\r\n";
    raw->write(request.data(), request.size()).wait(ws);
    auto result = waitWithin(io, kj::mv(responder));
    CHECK_FALSE(result.ok());
    CHECK_THAT(result.error, Catch::Contains("announced a frame"));
    // The responder closed the connection without answering.
    auto answer = waitWithin(io, readAll(*raw, 1 << 16));
    CHECK(answer.empty());
  }
  SECTION("a well-framed message 1 of random bytes") {
    auto responder = settle(listener.accept().then([&](kj::Own<UvStream> s) {
      return secureRespond(
          kj::mv(s), server, [](const crypto::PublicKey&) { return std::string(); }, port.getTimer());
    }));
    auto raw = connect(port, "127.0.0.1", listener.getPort()).wait(ws);
    auto body = randomData(48, testSeed("garbage message 1"));
    Bytes framed = noise::frame(ByteView(body.begin(), body.size()));
    raw->write(framed.data(), framed.size()).wait(ws);
    auto result = waitWithin(io, kj::mv(responder));
    CHECK_FALSE(result.ok());
    CHECK_THAT(result.error, Catch::Contains("message 1"));
    auto answer = waitWithin(io, readAll(*raw, 1 << 16));
    CHECK(answer.empty());
  }
  SECTION("an initiator dialling something that answers in another protocol") {
    auto garbageServer = listener.accept().then([](kj::Own<UvStream> s) {
      auto& ref = *s;
      static const std::string reply = "HTTP/1.1 400 Bad Request\r\n\r\n";
      return ref.write(reply.data(), reply.size()).then([&ref]() { return readAll(ref, 1 << 16); }).attach(kj::mv(s));
    });
    auto initiator = settle(connect(port, "127.0.0.1", listener.getPort()).then([&](kj::Own<UvStream> s) {
      return secureInitiate(kj::mv(s), client, server.publicKey(), port.getTimer());
    }));
    auto result = waitWithin(io, kj::mv(initiator));
    CHECK_FALSE(result.ok());
    CHECK_THAT(result.error, Catch::Contains("announced a frame"));
    // The server saw message 1 and then the end of the stream.
    auto seen = waitWithin(io, kj::mv(garbageServer));
    CHECK(seen.size() == MSG1_WIRE);
  }
}

TEST_CASE("secure transport: a handshake cut in the middle of message 1 fails at once", "[node][transport]") {
  UvIoContext io;
  auto& port = io.getPort();
  auto& ws = io.getWaitScope();
  auto server = crypto::Identity::generate();
  auto client = crypto::Identity::generate();
  UvListener listener(port, "127.0.0.1", 0);
  auto responder = settle(listener.accept().then([&](kj::Own<UvStream> s) {
    return secureRespond(
        kj::mv(s), server, [](const crypto::PublicKey&) { return std::string(); }, port.getTimer());
  }));
  Bytes msg1 = framedMessage1(client, server.publicKey());
  REQUIRE(msg1.size() == MSG1_WIRE);
  auto raw = connect(port, "127.0.0.1", listener.getPort()).wait(ws);
  raw->write(msg1.data(), msg1.size() / 2).wait(ws);
  raw->shutdownWrite();
  auto result = waitWithin(io, kj::mv(responder));
  CHECK_FALSE(result.ok());
  CHECK_THAT(result.error, Catch::Contains("closed the connection during the handshake"));
  CHECK_THAT(result.error, !Catch::Contains("in time"));
}

TEST_CASE("secure transport: a silent peer is dropped after the handshake timeout", "[node][transport][slow]") {
  // HANDSHAKE_TIMEOUT_MS of real time (kj's timer here is the real clock): both roles at once.
  UvIoContext io;
  auto& port = io.getPort();
  auto& ws = io.getWaitScope();
  auto server = crypto::Identity::generate();
  auto client = crypto::Identity::generate();
  UvListener respondingListener(port, "127.0.0.1", 0);
  UvListener silentListener(port, "127.0.0.1", 0);

  // A responder whose client connects and says nothing.
  auto responder = settle(respondingListener.accept().then([&](kj::Own<UvStream> s) {
    return secureRespond(
        kj::mv(s), server, [](const crypto::PublicKey&) { return std::string(); }, port.getTimer());
  }));
  auto silentClient = connect(port, "127.0.0.1", respondingListener.getPort()).wait(ws);
  // An initiator whose server accepts and says nothing.
  kj::Own<UvStream> silentServer;
  auto acceptSilent = silentListener.accept().then([&](kj::Own<UvStream> s) { silentServer = kj::mv(s); });
  auto initiator = settle(connect(port, "127.0.0.1", silentListener.getPort()).then([&](kj::Own<UvStream> s) {
    return secureInitiate(kj::mv(s), client, server.publicKey(), port.getTimer());
  }));
  acceptSilent.wait(ws);

  auto results = waitWithin(io, kj::joinPromises(kj::arr(kj::mv(responder), kj::mv(initiator))),
                            (HANDSHAKE_TIMEOUT_MS + 20000) * kj::MILLISECONDS);
  CHECK_FALSE(results[0].ok());
  CHECK_THAT(results[0].error, Catch::Contains("did not finish in time"));
  CHECK_FALSE(results[1].ok());
  CHECK_THAT(results[1].error, Catch::Contains("did not finish in time"));
  // The responder closed the silent client's connection.
  auto rest = waitWithin(io, readAll(*silentClient, 1 << 16));
  CHECK(rest.empty());
}

TEST_CASE("secure transport: message 1 and 3 replayed from an earlier session are refused", "[node][transport]") {
  UvIoContext io;
  auto& port = io.getPort();
  auto& ws = io.getWaitScope();
  auto client = crypto::Identity::generate();
  auto server = crypto::Identity::generate();
  UvListener listener(port, "127.0.0.1", 0);
  Bytes recorded;
  Bytes firstMessage2;
  {
    // A genuine session, recorded on the wire.
    TcpProxy proxy(port, listener.getPort(), std::nullopt, /*capture=*/true);
    auto pair = runConnection(io, listener, proxy.port(), client, server, server.publicKey(), {}, {});
    REQUIRE(pair.initiator.handshakeOk);
    REQUIRE(pair.responder.handshakeOk);
    recorded = proxy.captured(true);
    firstMessage2 = Bytes(proxy.captured(false).begin(), proxy.captured(false).begin() + MSG2_WIRE);
  }
  REQUIRE(recorded.size() == MSG1_WIRE + MSG3_WIRE);

  bool accepted = false;
  auto responder = settle(listener.accept().then([&](kj::Own<UvStream> s) {
    return secureRespond(
        kj::mv(s), server,
        [&](const crypto::PublicKey&) {
          accepted = true;
          return std::string();
        },
        port.getTimer());
  }));
  auto raw = connect(port, "127.0.0.1", listener.getPort()).wait(ws);
  raw->write(recorded.data(), MSG1_WIRE).wait(ws);
  // The responder answers a replayed message 1 (it cannot tell), with a fresh ephemeral key...
  Bytes message2(MSG2_WIRE);
  REQUIRE(waitWithin(io, raw->tryRead(message2.data(), MSG2_WIRE, MSG2_WIRE)) == MSG2_WIRE);
  CHECK(message2 != firstMessage2);
  // ...so the old message 3 does not authenticate, and the replayer learns nothing more.
  raw->write(recorded.data() + MSG1_WIRE, MSG3_WIRE).wait(ws);
  auto result = waitWithin(io, kj::mv(responder));
  CHECK_FALSE(result.ok());
  CHECK_THAT(result.error, Catch::Contains("message 3"));
  CHECK_FALSE(accepted);
  auto rest = waitWithin(io, readAll(*raw, 1 << 16));
  CHECK(rest.empty());
}

TEST_CASE("secure transport: a flipped bit anywhere ends the connection with a reason, no bad byte is delivered",
          "[node][transport]") {
  struct Case {
    const char* name;
    TcpProxy::Flip flip;
    const char* initiatorReason;  // substring expected in the initiator's reason, or nullptr
    const char* responderReason;  // likewise for the responder
  };
  const uint64_t deep = MSG1_WIRE + MSG3_WIRE + 2 * 1024 * 1024 + 7;
  // The 4th transport frame's length header in the client's stream (each 64 KiB write piece is
  // one full frame on the wire).
  const uint64_t header = MSG1_WIRE + MSG3_WIRE + 3 * TRANSPORT_FRAME_WIRE_MAX;
  const Case cases[] = {
      {"message 1", {true, 20, 0x04}, nullptr, "message 1"},
      {"message 1 length, over the limit", {true, 0, 0x01}, nullptr, "announced a frame"},
      {"message 1 length, too short", {true, 1, 0x10}, nullptr, "message 1"},
      {"message 2", {false, 30, 0x80}, "message 2", nullptr},
      {"message 3, encrypted static key", {true, MSG1_WIRE + 10, 0x01}, nullptr, "message 3"},
      {"message 3, payload", {true, MSG1_WIRE + 70, 0x10}, nullptr, "message 3"},
      {"status frame", {false, MSG2_WIRE + 2, 0x01}, "status", nullptr},
      {"first transport frame, client to server", {true, MSG1_WIRE + MSG3_WIRE + 5, 0x02}, nullptr, "authenticate"},
      {"first transport frame, server to client", {false, MSG2_WIRE + 19 + 9, 0x40}, "authenticate", nullptr},
      {"frame header deep in the transfer", {true, header, 0x01}, nullptr, "authenticate"},
      {"2 MiB into the transfer", {true, deep, 0x08}, nullptr, "authenticate"},
      {"2 MiB into the transfer, server to client", {false, deep, 0x01}, "authenticate", nullptr},
  };
  uint64_t seed = testSeed("transport bit flips");
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      UvIoContext io;
      auto client = crypto::Identity::generate();
      auto server = crypto::Identity::generate();
      auto toServer = randomData(TRANSFER_BYTES, seed);
      auto toClient = randomData(TRANSFER_BYTES, seed + 1);
      {
        UvListener listener(io.getPort(), "127.0.0.1", 0);
        TcpProxy proxy(io.getPort(), listener.getPort(), c.flip);
        auto pair = runConnection(io, listener, proxy.port(), client, server, server.publicKey(), toServer, toClient);
        INFO("initiator: " << describe(pair.initiator.reason()) << " (" << pair.initiator.delivered << " bytes)");
        INFO("responder: " << describe(pair.responder.reason()) << " (" << pair.responder.delivered << " bytes)");
        REQUIRE(proxy.flipped());
        // Nothing corrupted reached either reader.
        CHECK(pair.initiator.intact);
        CHECK(pair.responder.intact);
        // The side reading the corrupted direction did not get everything, and says why.
        const Endpoint& victim = c.flip.toServer ? pair.responder : pair.initiator;
        CHECK(victim.delivered < TRANSFER_BYTES);
        CHECK_FALSE(victim.reason().empty());
        // An end that did not get everything says why; none waited for the handshake timeout.
        for (const Endpoint* end : {&pair.initiator, &pair.responder}) {
          if (end->delivered < TRANSFER_BYTES) CHECK_FALSE(end->reason().empty());
          CHECK_THAT(end->reason(), !Catch::Contains("in time"));
        }
        if (c.initiatorReason != nullptr) CHECK_THAT(pair.initiator.reason(), Catch::Contains(c.initiatorReason));
        if (c.responderReason != nullptr) CHECK_THAT(pair.responder.reason(), Catch::Contains(c.responderReason));
        if (c.flip.offset == deep) {
          // Everything before the flipped frame arrived, intact.
          CHECK(victim.delivered >= 2 * 1024 * 1024 - 2 * TRANSPORT_FRAME_WIRE_MAX);
        }
        REQUIRE(waitFor(io, [&] { return proxy.openConnections() == 0; }));
      }
      REQUIRE_NOTHROW(io.shutdown());
    }
  }
}

TEST_CASE("secure transport: a flipped bit in the first RPC frame ends both sessions with the reason",
          "[node][transport]") {
  // Two replicas speaking Cap'n Proto RPC through the corrupting proxy: the first frame after the
  // handshake is the RPC bootstrap, in either direction.
  for (bool toServer : {true, false}) {
    DYNAMIC_SECTION((toServer ? "client to server" : "server to client")) {
      UvIoContext io;
      auto& port = io.getPort();
      TestNode a(io, "a");
      TestNode b(io, "b");
      {
        UvListener listener(port, "127.0.0.1", 0);
        uint64_t offset = toServer ? MSG1_WIRE + MSG3_WIRE + 7 : MSG2_WIRE + 19 + 7;
        TcpProxy proxy(port, listener.getPort(), TcpProxy::Flip{toServer, offset, 0x20});
        auto serverConn = listener.accept().then([&](kj::Own<UvStream> s) {
          return secureRespond(
              kj::mv(s), a.identity, [](const crypto::PublicKey&) { return std::string(); }, port.getTimer());
        });
        auto clientConn = connect(port, "127.0.0.1", proxy.port()).then([&](kj::Own<UvStream> s) {
          return secureInitiate(kj::mv(s), b.identity, a.key(), port.getTimer());
        });
        auto conns = waitWithin(io, kj::joinPromises(kj::arr(kj::mv(clientConn), kj::mv(serverConn))));
        auto clientFailure = conns[0].failure;
        auto serverFailure = conns[1].failure;
        PeerSession clientSession(*b.replicator, kj::mv(conns[0]), true, port.getTimer());
        PeerSession serverSession(*a.replicator, kj::mv(conns[1]), false, port.getTimer());
        auto ended =
            waitWithin(io, kj::joinPromises(kj::arr(settleVoid(clientSession.run()), settleVoid(serverSession.run()))));
        REQUIRE(proxy.flipped());
        INFO("client session: " << ended[0] << "; server session: " << ended[1]);
        INFO("client stream: " << *clientFailure << "; server stream: " << *serverFailure);
        CHECK_FALSE(ended[0].empty());
        CHECK_FALSE(ended[1].empty());
        const std::string& victimFailure = toServer ? *serverFailure : *clientFailure;
        const std::string& victimEnded = toServer ? ended[1] : ended[0];
        CHECK_THAT(victimFailure, Catch::Contains("authenticate"));
        // The session's own reason is the transport's, not a generic one.
        CHECK_THAT(victimEnded, Catch::Contains("authenticate"));
      }
    }
  }
}

}  // namespace kith::node::test
