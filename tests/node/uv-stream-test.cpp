// Tests for TCP on libuv: UvStream, connect() and UvListener over loopback with OS-assigned ports,
// including large transfers, cancellation, disconnects, and Cap'n Proto RPC over UvStream.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include <capnp/rpc-twoparty.h>
#include <kj/async.h>
#include <kj/debug.h>
#include <catch2/catch.hpp>

#include "node/test-echo.capnp.h"
#include "node/uv/uv-stream.h"
#include "tests/support/kj-exception.h"
#include "tests/support/seed.h"

namespace kith::node {
namespace {

using kith::test::expectKjException;
using kith::test::testSeed;

constexpr size_t LARGE_TRANSFER_BYTES = 8 * 1024 * 1024;
constexpr size_t ECHO_CHUNK_BYTES = 64 * 1024;

struct Connection {
  kj::Own<UvStream> client;
  kj::Own<UvStream> server;
};

Connection connectPair(UvIoContext& io, kj::StringPtr host = "127.0.0.1") {
  UvListener listener(io.getPort(), host, 0);
  REQUIRE(listener.getPort() != 0);
  auto accepted = listener.accept();
  auto client = connect(io.getPort(), host, listener.getPort()).wait(io.getWaitScope());
  auto server = accepted.wait(io.getWaitScope());
  return {kj::mv(client), kj::mv(server)};
}

kj::Array<kj::byte> randomBytes(size_t size, uint64_t seed) {
  std::mt19937 rng(seed);
  auto bytes = kj::heapArray<kj::byte>(size);
  for (auto& byte : bytes) byte = static_cast<kj::byte>(rng());
  return bytes;
}

kj::Promise<void> echoUntilEof(UvStream& stream, kj::byte* buffer) {
  return stream.tryRead(buffer, 1, ECHO_CHUNK_BYTES).then([&stream, buffer](size_t count) {
    if (count == 0) {
      stream.shutdownWrite();
      return kj::Promise<void>(kj::READY_NOW);
    }
    return stream.write(buffer, count).then([&stream, buffer]() { return echoUntilEof(stream, buffer); });
  });
}

void pollUntil(kj::WaitScope& ws, kj::Function<bool()> done) {
  // For conditions no promise reports (the backlog filling up); bounded so a bug fails, not hangs.
  constexpr int POLLS_MAX = 1000000;
  for (int i = 0; i < POLLS_MAX && !done(); ++i) ws.poll();
  REQUIRE(done());
}

}  // namespace

TEST_CASE("echo 8 MiB each way over loopback", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [client, server] = connectPair(io);
  CHECK(client->getPeerName().startsWith("127.0.0.1:"));

  auto sent = randomBytes(LARGE_TRANSFER_BYTES, testSeed("uv-stream"));
  auto received = kj::heapArray<kj::byte>(LARGE_TRANSFER_BYTES);
  auto echoBuffer = kj::heapArray<kj::byte>(ECHO_CHUNK_BYTES);

  auto echo = echoUntilEof(*server, echoBuffer.begin());
  // Eager: the join would otherwise run the shutdownWrite() continuation only once all are done.
  auto send =
      client->write(sent.begin(), sent.size()).then([&]() { client->shutdownWrite(); }).eagerlyEvaluate(nullptr);
  auto receive = client->read(received.begin(), received.size());
  kj::joinPromises(kj::arr(kj::mv(echo), kj::mv(send), kj::mv(receive))).wait(ws);

  CHECK(memcmp(sent.begin(), received.begin(), LARGE_TRANSFER_BYTES) == 0);
  kj::byte extra;
  CHECK(client->tryRead(&extra, 1, 1).wait(ws) == 0);  // The server shut down after echoing.

  client = nullptr;
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("both ends write 8 MiB at once", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [client, server] = connectPair(io);
  uint64_t seed = testSeed("uv-stream");
  auto fromClient = randomBytes(LARGE_TRANSFER_BYTES, seed);
  auto fromServer = randomBytes(LARGE_TRANSFER_BYTES, seed + 1);
  auto atServer = kj::heapArray<kj::byte>(LARGE_TRANSFER_BYTES);
  auto atClient = kj::heapArray<kj::byte>(LARGE_TRANSFER_BYTES);

  kj::joinPromises(kj::arr(client->write(fromClient.begin(), fromClient.size()),
                           server->write(fromServer.begin(), fromServer.size()),
                           server->read(atServer.begin(), atServer.size()),
                           client->read(atClient.begin(), atClient.size())))
      .wait(ws);
  CHECK(memcmp(fromClient.begin(), atServer.begin(), LARGE_TRANSFER_BYTES) == 0);
  CHECK(memcmp(fromServer.begin(), atClient.begin(), LARGE_TRANSFER_BYTES) == 0);

  client = nullptr;
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("a read waits for minBytes and returns up to maxBytes", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [client, server] = connectPair(io);
  char buffer[100] = {};

  client->write("abc", 3).wait(ws);
  auto read = server->tryRead(buffer, 5, sizeof(buffer));
  CHECK_FALSE(read.poll(ws));  // 3 bytes are not enough.
  client->write("defg", 4).wait(ws);
  size_t count = read.wait(ws);
  CHECK(count == 7);
  CHECK(kj::StringPtr(buffer, count) == "abcdefg");

  // More than maxBytes waiting: the rest stays for the next read.
  client->write("0123456789", 10).wait(ws);
  pollUntil(ws, [&]() { return server->getReadBacklogBytes() == 10; });
  CHECK(server->tryRead(buffer, 1, 4).wait(ws) == 4);
  CHECK(kj::StringPtr(buffer, 4) == "0123");
  CHECK(server->tryRead(buffer, 6, 6).wait(ws) == 6);
  CHECK(kj::StringPtr(buffer, 6) == "456789");

  client = nullptr;
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("end of stream: short read, then 0, and the other direction still works", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [client, server] = connectPair(io);
  char buffer[100] = {};

  client->write("hello", 5).wait(ws);
  client->shutdownWrite();
  CHECK(server->tryRead(buffer, 10, sizeof(buffer)).wait(ws) == 5);  // Fewer than min at EOF.
  CHECK(kj::StringPtr(buffer, 5) == "hello");
  CHECK(server->tryRead(buffer, 1, sizeof(buffer)).wait(ws) == 0);
  // kj's read() needs all its bytes: at EOF that is an error.
  auto exception = expectKjException([&]() { server->read(buffer, 1).wait(ws); });
  CHECK(exception.getType() == kj::Exception::Type::DISCONNECTED);
  // We treat the peer's end of stream as a disconnect (see uv-stream.h).
  CHECK(server->whenWriteDisconnected().poll(ws));

  // A half-close: the server may still answer.
  server->write("bye", 3).wait(ws);
  CHECK(client->tryRead(buffer, 3, 3).wait(ws) == 3);
  CHECK(kj::StringPtr(buffer, 3) == "bye");
  // Writing after our own shutdownWrite() is a bug in the caller.
  auto afterShutdown = expectKjException([&]() { client->write("x", 1).wait(ws); });
  CHECK(afterShutdown.getType() == kj::Exception::Type::FAILED);

  client = nullptr;
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("a peer reset gives DISCONNECTED on read, write and whenWriteDisconnected", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto listener = kj::heap<UvListener>(io.getPort(), "127.0.0.1", 0);
  auto accepted = listener->accept();

  // A plain socket as the peer, so it can send RST (SO_LINGER 0) rather than FIN.
  int peer = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(peer >= 0);
  sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(listener->getPort());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(peer, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  auto server = accepted.wait(ws);
  auto disconnected = server->whenWriteDisconnected();
  CHECK_FALSE(disconnected.poll(ws));

  linger reset = {1, 0};
  REQUIRE(setsockopt(peer, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)) == 0);
  REQUIRE(close(peer) == 0);

  char buffer[16];
  auto readFailure = expectKjException([&]() { server->tryRead(buffer, 1, 16).wait(ws); });
  CHECK(readFailure.getType() == kj::Exception::Type::DISCONNECTED);
  CHECK_THAT(readFailure.getDescription().cStr(), Catch::Contains("read from 127.0.0.1:"));
  disconnected.wait(ws);
  auto writeFailure = expectKjException([&]() { server->write("x", 1).wait(ws); });
  CHECK(writeFailure.getType() == kj::Exception::Type::DISCONNECTED);

  server = nullptr;
  listener = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("a cancelled read loses nothing and its buffer is not written", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [client, server] = connectPair(io);

  {
    // Freed right after the cancel: ASan reports any late write into it.
    auto buffer = kj::heapArray<kj::byte>(100);
    auto read = server->tryRead(buffer.begin(), 1, buffer.size());
    CHECK_FALSE(read.poll(ws));
  }
  client->write("after the cancel", 16).wait(ws);
  pollUntil(ws, [&]() { return server->getReadBacklogBytes() == 16; });
  char buffer[32];
  CHECK(server->tryRead(buffer, 16, sizeof(buffer)).wait(ws) == 16);
  CHECK(kj::StringPtr(buffer, 16) == "after the cancel");

  client = nullptr;
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("a cancelled write still delivers its bytes, in order", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [client, server] = connectPair(io);
  auto expected = randomBytes(LARGE_TRANSFER_BYTES, testSeed("uv-stream"));

  {
    // The server is not reading, so the kernel takes only part of this and the write is pending.
    auto buffer = kj::heapArray<kj::byte>(expected.asPtr());
    auto write = client->write(buffer.begin(), buffer.size());
    CHECK_FALSE(write.poll(ws));
    // Dropping the promise cancels it; then the caller's buffer goes (ASan watches).
  }
  auto tail = client->write("tail", 4);

  auto received = kj::heapArray<kj::byte>(LARGE_TRANSFER_BYTES + 4);
  server->read(received.begin(), received.size()).wait(ws);
  tail.wait(ws);
  CHECK(memcmp(received.begin(), expected.begin(), LARGE_TRANSFER_BYTES) == 0);
  CHECK(memcmp(received.begin() + LARGE_TRANSFER_BYTES, "tail", 4) == 0);

  client = nullptr;
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("destroying a stream with a write queued and a read cancelled frees everything", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [client, server] = connectPair(io);
  auto bytes = randomBytes(LARGE_TRANSFER_BYTES, testSeed("uv-stream"));
  {
    auto write = client->write(bytes.begin(), bytes.size());
    char buffer[16];
    auto read = client->tryRead(buffer, 1, sizeof(buffer));
    CHECK_FALSE(write.poll(ws));
    CHECK_FALSE(read.poll(ws));
  }
  // libuv completes the queued write with UV_ECANCELED after the stream is gone; ASan and LSan
  // check that the copy is freed and nothing touches the stream.
  client = nullptr;

  // The peer gets a prefix of what was written, then the end of the stream.
  auto received = kj::heapArray<kj::byte>(LARGE_TRANSFER_BYTES + 1);
  size_t total = 0;
  for (;;) {
    size_t count = server->tryRead(received.begin() + total, 1, received.size() - total).wait(ws);
    if (count == 0) break;
    total += count;
  }
  CHECK(total <= LARGE_TRANSFER_BYTES);
  CHECK(memcmp(received.begin(), bytes.begin(), total) == 0);
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("a reader that falls behind pauses reading at the backlog bound", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [client, server] = connectPair(io);
  auto sent = randomBytes(LARGE_TRANSFER_BYTES, testSeed("uv-stream"));

  auto write = client->write(sent.begin(), sent.size());
  pollUntil(ws, [&]() { return server->isReadPaused(); });
  CHECK(server->getReadBacklogBytes() >= UV_READ_BACKLOG_BYTES_MAX);
  CHECK(server->getReadBacklogBytes() < UV_READ_BACKLOG_BYTES_MAX + UV_READ_CHUNK_BYTES);
  // The rest waits in the kernel and in our write queue, not in the backlog.
  CHECK_FALSE(write.poll(ws));

  auto received = kj::heapArray<kj::byte>(LARGE_TRANSFER_BYTES);
  server->read(received.begin(), received.size()).wait(ws);
  write.wait(ws);
  CHECK(memcmp(sent.begin(), received.begin(), LARGE_TRANSFER_BYTES) == 0);

  client = nullptr;
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("connect: refused, localhost, IPv6 and cancelled", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();

  SECTION("nothing listening gives a clear DISCONNECTED") {
    uint16_t freePort;
    {
      UvListener listener(io.getPort(), "127.0.0.1", 0);
      freePort = listener.getPort();
    }
    auto exception = expectKjException([&]() { connect(io.getPort(), "127.0.0.1", freePort).wait(ws); });
    CHECK(exception.getType() == kj::Exception::Type::DISCONNECTED);
    CHECK(exception.getDescription() == kj::str("connection refused to 127.0.0.1:", freePort));
  }
  SECTION("localhost") {
    auto [client, server] = connectPair(io, "localhost");
    client->write("hi", 2).wait(ws);
    char buffer[2];
    CHECK(server->tryRead(buffer, 2, 2).wait(ws) == 2);
  }
  SECTION("IPv6 loopback, where the machine has it") {
    kj::Maybe<kj::Exception> unavailable =
        kj::runCatchingExceptions([&]() { UvListener probe(io.getPort(), "::1", 0); });
    if (unavailable == nullptr) {
      auto [client, server] = connectPair(io, "::1");
      CHECK(client->getPeerName().startsWith("[::1]:"));
      server->write("v6", 2).wait(ws);
      char buffer[2];
      CHECK(client->tryRead(buffer, 2, 2).wait(ws) == 2);
    } else {
      WARN("no IPv6 loopback here; skipped");
    }
  }
  SECTION("dropping the promise cancels the attempt") {
    UvListener listener(io.getPort(), "127.0.0.1", 0);
    { auto attempt = connect(io.getPort(), "127.0.0.1", listener.getPort()); }
    ws.poll();
    // The listener still works for the next caller. The kernel may already have completed the
    // cancelled attempt's handshake, so that (closed) connection can come first.
    auto client = connect(io.getPort(), "127.0.0.1", listener.getPort()).wait(ws);
    sockaddr_storage local;
    kj::uint length = sizeof(local);
    client->getsockname(reinterpret_cast<sockaddr*>(&local), &length);
    auto clientName = kj::str("127.0.0.1:", ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port));
    auto server = listener.accept().wait(ws);
    if (server->getPeerName() != clientName) server = listener.accept().wait(ws);
    CHECK(server->getPeerName() == clientName);
  }
  SECTION("an address that is neither numeric nor localhost cannot be listened on") {
    auto exception = expectKjException([&]() { UvListener bad(io.getPort(), "not-an-ip", 0); });
    CHECK(exception.getType() == kj::Exception::Type::FAILED);
  }
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("a listener queues connections until accept() and reports a port in use", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto listener = kj::heap<UvListener>(io.getPort(), "127.0.0.1", 0);
  uint16_t port = listener->getPort();

  auto first = connect(io.getPort(), "127.0.0.1", port).wait(ws);
  auto second = connect(io.getPort(), "127.0.0.1", port).wait(ws);
  first->write("1", 1).wait(ws);
  second->write("2", 1).wait(ws);
  auto acceptedA = listener->accept().wait(ws);
  auto acceptedB = listener->accept().wait(ws);
  char a, b;
  CHECK(acceptedA->tryRead(&a, 1, 1).wait(ws) == 1);
  CHECK(acceptedB->tryRead(&b, 1, 1).wait(ws) == 1);
  CHECK(((a == '1' && b == '2') || (a == '2' && b == '1')));

  auto inUse = expectKjException([&]() { UvListener clash(io.getPort(), "127.0.0.1", port); });
  CHECK_THAT(inUse.getDescription().cStr(), Catch::Contains(kj::str("127.0.0.1:", port).cStr()));

  first = nullptr;
  second = nullptr;
  acceptedA = nullptr;
  acceptedB = nullptr;
  listener = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("getsockopt reaches the socket, as TwoPartyVatNetwork asks for SO_SNDBUF", "[node][uv]") {
  UvIoContext io;
  auto [client, server] = connectPair(io);
  int sendBuffer = 0;
  kj::uint length = sizeof(sendBuffer);
  client->getsockopt(SOL_SOCKET, SO_SNDBUF, &sendBuffer, &length);
  CHECK(length == sizeof(sendBuffer));
  CHECK(sendBuffer > 0);
  int noDelay = 0;
  length = sizeof(noDelay);
  server->getsockopt(IPPROTO_TCP, TCP_NODELAY, &noDelay, &length);
  CHECK(noDelay != 0);
  client = nullptr;
  server = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

// ---------------------------------------------------------------------------------------------
// Cap'n Proto RPC over UvStream

namespace {

class TestEchoServer final : public test::TestEcho::Server {
public:
  explicit TestEchoServer(kj::Timer& timer) : timer(timer) {}

  kj::Promise<void> echo(EchoContext context) override {
    auto params = context.getParams();
    auto text = kj::str(params.getText());
    uint32_t delayMs = params.getDelayMs();
    auto reply = [context, text = kj::mv(text)]() mutable { context.getResults().setText(text); };
    if (delayMs == 0) {
      reply();
      return kj::READY_NOW;
    }
    return timer.afterDelay(delayMs * kj::MILLISECONDS).then(kj::mv(reply));
  }

private:
  kj::Timer& timer;
};

kj::Promise<void> sequentialCalls(test::TestEcho::Client echo, int remaining, int index = 0) {
  if (remaining == 0) return kj::READY_NOW;
  auto request = echo.echoRequest();
  auto expected = kj::str("call ", index);
  request.setText(expected);
  return request.send().then([echo, remaining, index, expected = kj::mv(expected)](auto&& response) mutable {
    KJ_ASSERT(response.getText() == expected);
    return sequentialCalls(kj::mv(echo), remaining - 1, index + 1);
  });
}

}  // namespace

TEST_CASE("Cap'n Proto RPC round trips over UvStream", "[node][uv]") {
  constexpr int SEQUENTIAL_CALLS = 1000;
  constexpr int CONCURRENT_CALLS = 100;
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [clientStream, serverStream] = connectPair(io);

  auto rpcServer = kj::heap<capnp::TwoPartyServer>(kj::heap<TestEchoServer>(io.getTimer()));
  rpcServer->accept(kj::mv(serverStream));
  auto rpcClient = kj::heap<capnp::TwoPartyClient>(*clientStream);
  auto echo = rpcClient->bootstrap().castAs<test::TestEcho>();

  SECTION("sequential, under promise.wait()") {
    for (int i = 0; i < SEQUENTIAL_CALLS; ++i) {
      auto request = echo.echoRequest();
      auto text = kj::str("call ", i);
      request.setText(text);
      auto response = request.send().wait(ws);
      REQUIRE(response.getText() == text);
    }
  }
  SECTION("sequential, under run()") { io.getPort().runUntil(sequentialCalls(echo, SEQUENTIAL_CALLS), ws); }
  SECTION("concurrent, answered out of order") {
    kj::Vector<kj::Promise<void>> calls;
    for (int i = 0; i < CONCURRENT_CALLS; ++i) {
      auto request = echo.echoRequest();
      auto text = kj::str("concurrent ", i);
      request.setText(text);
      // Later calls answer sooner, so replies cross on the wire.
      request.setDelayMs(static_cast<uint32_t>((CONCURRENT_CALLS - i) % 7));
      calls.add(request.send().then([text = kj::mv(text)](auto&& response) { KJ_ASSERT(response.getText() == text); }));
    }
    io.getPort().runUntil(kj::joinPromises(calls.releaseAsArray()), ws);
  }
  SECTION("a large message") {
    auto request = echo.echoRequest();
    auto text = kj::heapString(4 * 1024 * 1024);
    for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
    request.setText(text);
    auto response = request.send().wait(ws);
    CHECK(response.getText() == text);
  }

  // Teardown in dependency order; the server notices the client's disconnect and lets go.
  echo = nullptr;
  rpcClient = nullptr;
  clientStream = nullptr;
  ws.poll();
  rpcServer = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("an RPC call fails with DISCONNECTED when the server goes away", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();
  auto [clientStream, serverStream] = connectPair(io);
  auto rpcClient = kj::heap<capnp::TwoPartyClient>(*clientStream);
  auto echo = rpcClient->bootstrap().castAs<test::TestEcho>();
  // No RPC server: the peer just closes its end.
  serverStream = nullptr;

  auto request = echo.echoRequest();
  request.setText("anyone?");
  auto exception = expectKjException([&]() { request.send().wait(ws); });
  CHECK(exception.getType() == kj::Exception::Type::DISCONNECTED);

  echo = nullptr;
  rpcClient = nullptr;
  clientStream = nullptr;
  REQUIRE_NOTHROW(io.shutdown());
}

}  // namespace kith::node
