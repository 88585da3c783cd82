// TCP for KJ on libuv: `UvStream`, a `kj::AsyncIoStream` over a `uv_tcp_t` (what capnp's
// TwoPartyVatNetwork and the secure transport run over), `connect()` to dial a peer, and
// `UvListener` to accept peers.
//
// Errors: every libuv code goes through uvException() (uv-loop.h). A lost connection (end of
// stream where data was required, reset, broken pipe, refused, timed out, unreachable) is a
// DISCONNECTED exception: drop the peer and back off. Anything else is FAILED.
//
// Threading: loop thread only, like the UvEventPort they are built on. The port (and its loop) must
// outlive every stream and listener; a stream must outlive the promises it returned (KJ's rule).
//
// Caveats:
// - Reading starts as soon as a stream exists and stops while UV_READ_BACKLOG_BYTES_MAX bytes wait
//   unread, so a peer that sends faster than we read is held back by TCP, not by our memory.
// - Cancelling a read loses no data unless the read asked for more than the backlog bound (then
//   bytes already handed to the caller's buffer go with it, as with KJ's own streams).
// - A cancelled write still completes in the background from an owned copy of its unwritten bytes,
//   so the bytes stay in order; a peer that never reads is bounded by UV_WRITE_QUEUE_BYTES_MAX.
// - whenWriteDisconnected() learns of a disconnect from reads and writes (libuv allows one watcher
//   per socket); it treats the peer's end of stream as a disconnect, which is what every peer of
//   ours means by it. While reading is paused for backlog, only a write notices a dead peer.
// - connect() resolves names other than numeric addresses and "localhost" through libuv's thread
//   pool; "localhost" always means 127.0.0.1.

#pragma once

#include <kj/async-io.h>

#include "node/uv/uv-event-port.h"

namespace kith::node {

constexpr size_t UV_READ_CHUNK_BYTES = 64 * 1024;
// Bytes offered to libuv per read call.

constexpr size_t UV_READ_BACKLOG_BYTES_MAX = 256 * 1024;
// Received bytes a stream holds for its reader before it stops reading the socket. With
// UV_READ_CHUNK_BYTES, a stream's read buffer never exceeds the sum of the two.

constexpr size_t UV_WRITE_QUEUE_BYTES_MAX = 16 * 1024 * 1024;
// Bytes left queued by cancelled writes beyond which further writes fail: a peer that does not
// read must not make us buffer without bound.

constexpr int UV_LISTEN_BACKLOG = 128;
// TCP keep-alive on every connection: after this many idle seconds the kernel probes the peer
// (without waking the process), so a peer that vanished (a laptop shut, a network gone) is noticed
// and its connection ends even when neither side has anything to say.
constexpr unsigned UV_TCP_KEEPALIVE_IDLE_S = 120;
// Connections the kernel queues for a listener before accept(); more are refused by the kernel.

class UvStream final : public kj::AsyncIoStream {
public:
  UvStream(UvEventPort& port, UvHandle<uv_tcp_t> tcp);
  // Takes a connected TCP handle (from connect() or UvListener), sets TCP_NODELAY (KJ's sockets do;
  // RPC latency suffers without it) and starts reading.
  ~UvStream() noexcept;
  KJ_DISALLOW_COPY(UvStream);

  kj::StringPtr getPeerName() const { return peerName; }
  // "127.0.0.1:4242" or "[::1]:4242", for logs and error messages.

  size_t getReadBacklogBytes() const { return readTail - readHead; }
  bool isReadPaused() const { return !reading; }
  // Observers for the backlog bound (tests and diagnostics).

  // kj::AsyncInputStream ---------------------------------------------------------------------
  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override;
  // One read at a time. Fewer than minBytes only at end of stream; 0 once it is reached.

  // kj::AsyncOutputStream --------------------------------------------------------------------
  kj::Promise<void> write(const void* buffer, size_t size) override;
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override;
  // One write at a time. The caller's buffers are needed only until this returns.
  kj::Promise<void> whenWriteDisconnected() override;

  // kj::AsyncIoStream -------------------------------------------------------------------------
  void shutdownWrite() override;
  // Sends FIN after queued writes. Later writes fail. Ignores an already lost connection.
  void getsockopt(int level, int option, void* value, kj::uint* length) override;
  void setsockopt(int level, int option, const void* value, kj::uint length) override;
  void getsockname(struct sockaddr* addr, kj::uint* length) override;
  void getpeername(struct sockaddr* addr, kj::uint* length) override;
  // The socket (owned by the stream: dup() it to keep the connection beyond the stream).
  kj::Maybe<int> getFd() const override { return fd(); }

private:
  class PendingRead;
  class PendingWrite;
  struct WriteRequest;

  UvEventPort& port;
  UvHandle<uv_tcp_t> tcp;
  kj::String peerName;

  // Received bytes not yet handed to a reader: readBuffer[readHead, readTail).
  kj::Array<kj::byte> readBuffer;
  size_t readHead = 0;
  size_t readTail = 0;
  bool reading = false;
  bool readEof = false;
  kj::Maybe<kj::Exception> readError;
  PendingRead* pendingRead = nullptr;

  kj::Maybe<kj::Exception> writeError;
  bool writeShut = false;

  kj::Own<kj::PromiseFulfiller<void>> disconnectFulfiller;
  kj::ForkedPromise<void> disconnected;

  UvStream(UvEventPort& port, UvHandle<uv_tcp_t> tcp, kj::PromiseFulfillerPair<void> disconnect);

  int fd() const;
  size_t takeBacklog(kj::byte* out, size_t maxBytes);
  void satisfyPendingRead();
  void updateReading();
  void failRead(int code);
  kj::Exception failWrite(int code);
  void notifyDisconnected();

  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onWriteDone(uv_write_t* req, int status);
};

kj::Promise<kj::Own<UvStream>> connect(UvEventPort& port, kj::StringPtr host, uint16_t portNumber);
// Dials host:portNumber. `host` is a numeric IPv4 or IPv6 address ("[::1]" or "::1"), "localhost",
// or a name to resolve. Rejects with DISCONNECTED "connection refused to HOST:PORT" when nothing
// listens there, DISCONNECTED for other network failures, FAILED if the name does not resolve.
// Dropping the promise cancels the attempt.

class UvListener {
  // A listening TCP socket. accept() hands out one connection at a time; while nobody is waiting in
  // accept(), further connections wait in the kernel's queue (UV_LISTEN_BACKLOG), not in ours.

public:
  UvListener(UvEventPort& port, kj::StringPtr host, uint16_t portNumber, int backlog = UV_LISTEN_BACKLOG);
  // Binds host:portNumber (numeric address or "localhost"; port 0 lets the OS choose, see
  // getPort()) and listens. Throws FAILED with the address if either fails (port in use, ...).
  ~UvListener() noexcept;
  KJ_DISALLOW_COPY(UvListener);

  uint16_t getPort() const;
  // The bound port, the OS-assigned one if 0 was asked for.

  kj::Promise<kj::Own<UvStream>> accept();
  // The next incoming connection. One accept() at a time. A failure to accept (out of file
  // descriptors, ...) rejects this accept() (or the next one, if nobody was waiting); the listener
  // stays usable.

private:
  class PendingAccept;

  UvEventPort& port;
  UvHandle<uv_tcp_t> server;
  kj::String label;
  bool connectionPending = false;  // libuv holds an incoming connection for uv_accept().
  kj::Maybe<kj::Exception> acceptError;
  PendingAccept* waiter = nullptr;

  kj::Own<UvStream> acceptNow();
  static void onConnection(uv_stream_t* server, int status);
};

}  // namespace kith::node
