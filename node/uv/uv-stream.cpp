// TCP streams, dialling and listening on libuv; see uv-stream.h.

#include "node/uv/uv-stream.h"

#include <sys/socket.h>

#include <climits>
#include <cstring>
#include <memory>

#include <kj/debug.h>
#include <kj/vector.h>

namespace kith::node {

namespace {

kj::String formatAddress(const sockaddr* addr) {
  char host[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    uv_ip4_name(in, host, sizeof(host));
    return kj::str(host, ":", ntohs(in->sin_port));
  }
  if (addr->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    uv_ip6_name(in6, host, sizeof(host));
    return kj::str("[", host, "]:", ntohs(in6->sin6_port));
  }
  return kj::str("(address family ", addr->sa_family, ")");
}

kj::String formatHostPort(kj::StringPtr host, uint16_t portNumber) {
  bool bareIpv6 = host.findFirst(':') != nullptr && !host.startsWith("[");
  return bareIpv6 ? kj::str("[", host, "]:", portNumber) : kj::str(host, ":", portNumber);
}

kj::Maybe<sockaddr_storage> tryParseAddress(kj::StringPtr host, uint16_t portNumber) {
  // Numeric addresses only, plus "localhost" (never looked up: its IPv4 meaning is the one every
  // kith node listens on by default).
  sockaddr_storage addr;
  memset(&addr, 0, sizeof(addr));
  kj::String name = host == "localhost" ? kj::str("127.0.0.1") : kj::str(host);
  if (name.startsWith("[") && name.endsWith("]")) { name = kj::str(name.slice(1, name.size() - 1)); }
  if (uv_ip4_addr(name.cStr(), portNumber, reinterpret_cast<sockaddr_in*>(&addr)) == 0) { return addr; }
  if (uv_ip6_addr(name.cStr(), portNumber, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) { return addr; }
  return nullptr;
}

}  // namespace

// =============================================================================================
// UvStream: reading

class UvStream::PendingRead {
  // Adapter behind a tryRead() that could not complete at once. Registered with the stream until it
  // completes or the caller drops the promise.

public:
  PendingRead(kj::PromiseFulfiller<size_t>& fulfiller, UvStream& stream, kj::byte* buffer, size_t minBytes,
              size_t maxBytes)
      : fulfiller(fulfiller), stream(&stream), buffer(buffer), minBytes(minBytes), maxBytes(maxBytes) {
    stream.pendingRead = this;
  }
  ~PendingRead() noexcept {
    if (stream != nullptr && stream->pendingRead == this) stream->pendingRead = nullptr;
  }
  KJ_DISALLOW_COPY(PendingRead);

  kj::PromiseFulfiller<size_t>& fulfiller;
  UvStream* stream;  // Null once completed, or once the stream is gone.
  kj::byte* buffer;
  size_t minBytes;
  size_t maxBytes;
  size_t alreadyRead = 0;
};

UvStream::UvStream(UvEventPort& port, UvHandle<uv_tcp_t> tcp)
    : UvStream(port, kj::mv(tcp), kj::newPromiseAndFulfiller<void>()) {}

UvStream::UvStream(UvEventPort& port, UvHandle<uv_tcp_t> tcpParam, kj::PromiseFulfillerPair<void> disconnect)
    : port(port), tcp(kj::mv(tcpParam)), disconnectFulfiller(kj::mv(disconnect.fulfiller)),
      disconnected(disconnect.promise.fork()) {
  KJ_REQUIRE(tcp.get() != nullptr, "UvStream needs a TCP handle");
  tcp->data = this;
  sockaddr_storage peer;
  int length = sizeof(peer);
  if (uv_tcp_getpeername(tcp.get(), reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
    peerName = formatAddress(reinterpret_cast<sockaddr*>(&peer));
  } else {
    peerName = kj::str("(unknown peer)");
  }
  uvCheck(uv_tcp_nodelay(tcp.get(), 1), kj::str("cannot set TCP_NODELAY for ", peerName));
  uvCheck(uv_tcp_keepalive(tcp.get(), 1, UV_TCP_KEEPALIVE_IDLE_S), kj::str("cannot set SO_KEEPALIVE for ", peerName));
  updateReading();
}

UvStream::~UvStream() noexcept {
  if (pendingRead != nullptr) {
    // The reader broke KJ's rule (a stream outlives its promises); fail it rather than dangle.
    PendingRead* read = pendingRead;
    pendingRead = nullptr;
    read->stream = nullptr;
    read->fulfiller.reject(KJ_EXCEPTION(DISCONNECTED, "stream destroyed during a read"));
  }
  // `tcp` closes now. Queued writes then complete with UV_ECANCELED and, finding handle->data null,
  // only free their copies.
}

int UvStream::fd() const {
  uv_os_fd_t result;
  uvCheck(uv_fileno(tcp.asHandle(), &result), kj::str("no socket for ", peerName));
  return result;
}

size_t UvStream::takeBacklog(kj::byte* out, size_t maxBytes) {
  size_t count = kj::min(readTail - readHead, maxBytes);
  if (count > 0) memcpy(out, readBuffer.begin() + readHead, count);
  readHead += count;
  if (readHead == readTail) {
    readHead = 0;
    readTail = 0;
    // A burst grew the buffer past one chunk: give the memory back once it is drained.
    if (readBuffer.size() > UV_READ_CHUNK_BYTES) readBuffer = nullptr;
  }
  return count;
}

kj::Promise<size_t> UvStream::tryRead(void* buffer, size_t minBytes, size_t maxBytes) {
  KJ_REQUIRE(pendingRead == nullptr, "only one read at a time on a UvStream");
  KJ_REQUIRE(minBytes <= maxBytes, minBytes, maxBytes);
  auto* out = static_cast<kj::byte*>(buffer);
  if (getReadBacklogBytes() >= minBytes || readEof || readError != nullptr) {
    size_t count = takeBacklog(out, maxBytes);
    updateReading();
    if (count >= minBytes || readEof) return count;
    return kj::cp(KJ_ASSERT_NONNULL(readError));
  }
  auto promise = kj::newAdaptedPromise<size_t, PendingRead>(*this, out, minBytes, maxBytes);
  // Reading may be paused with a full backlog that is still short of minBytes: hand it over now, or
  // no callback would ever come to do it.
  satisfyPendingRead();
  updateReading();
  return promise;
}

void UvStream::satisfyPendingRead() {
  PendingRead* read = pendingRead;
  if (read == nullptr) return;
  size_t available = getReadBacklogBytes();
  if (read->alreadyRead + available >= read->minBytes || readEof || readError != nullptr) {
    read->alreadyRead += takeBacklog(read->buffer + read->alreadyRead, read->maxBytes - read->alreadyRead);
    pendingRead = nullptr;
    read->stream = nullptr;
    if (read->alreadyRead >= read->minBytes || readEof) {
      read->fulfiller.fulfill(kj::cp(read->alreadyRead));
    } else {
      read->fulfiller.reject(kj::cp(KJ_ASSERT_NONNULL(readError)));
    }
  } else if (available >= UV_READ_BACKLOG_BYTES_MAX) {
    // The read wants more than the backlog may hold: hand over what is here so reading goes on.
    // It fits, since alreadyRead + available < minBytes <= maxBytes.
    read->alreadyRead += takeBacklog(read->buffer + read->alreadyRead, available);
  }
}

void UvStream::updateReading() {
  bool wanted = !readEof && readError == nullptr && getReadBacklogBytes() < UV_READ_BACKLOG_BYTES_MAX;
  if (wanted && !reading) {
    int rc = uv_read_start(tcp.asStream(), &UvStream::onAlloc, &UvStream::onRead);
    if (rc < 0) {
      failRead(rc);
      return;
    }
    reading = true;
  } else if (!wanted && reading) {
    uv_read_stop(tcp.asStream());
    reading = false;
  }
}

void UvStream::failRead(int code) {
  if (readError == nullptr) readError = uvException(code, kj::str("read from ", peerName));
  if (isUvDisconnect(code)) notifyDisconnected();
  satisfyPendingRead();
  updateReading();
}

void UvStream::notifyDisconnected() {
  if (disconnectFulfiller->isWaiting()) disconnectFulfiller->fulfill();
}

void UvStream::onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  // Reads land in the stream's own buffer, never in a caller's: a cancelled read leaves libuv
  // nothing to write into.
  *buf = uv_buf_init(nullptr, 0);  // Length 0 makes libuv report UV_ENOBUFS to onRead().
  auto* self = static_cast<UvStream*>(handle->data);
  if (self == nullptr) return;
  runUvCallback(self->port, [self, buf]() {
    if (self->readHead == self->readTail) {
      self->readHead = 0;
      self->readTail = 0;
    }
    if (self->readBuffer.size() - self->readTail < UV_READ_CHUNK_BYTES) {
      size_t live = self->readTail - self->readHead;
      if (self->readHead > 0) {
        memmove(self->readBuffer.begin(), self->readBuffer.begin() + self->readHead, live);
        self->readHead = 0;
        self->readTail = live;
      }
      if (self->readBuffer.size() - self->readTail < UV_READ_CHUNK_BYTES) {
        // Reading stops at UV_READ_BACKLOG_BYTES_MAX, so this stays within backlog + one chunk.
        size_t capacity = kj::min(kj::max(self->readBuffer.size() * 2, live + UV_READ_CHUNK_BYTES),
                                  UV_READ_BACKLOG_BYTES_MAX + UV_READ_CHUNK_BYTES);
        auto grown = kj::heapArray<kj::byte>(capacity);
        if (live > 0) memcpy(grown.begin(), self->readBuffer.begin(), live);
        self->readBuffer = kj::mv(grown);
      }
    }
    size_t room = kj::min(self->readBuffer.size() - self->readTail, UV_READ_CHUNK_BYTES);
    *buf = uv_buf_init(reinterpret_cast<char*>(self->readBuffer.begin() + self->readTail),
                       static_cast<unsigned int>(room));
  });
}

void UvStream::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
  auto* self = static_cast<UvStream*>(stream->data);
  if (self == nullptr) return;
  runUvCallback(self->port, [self, nread]() {
    if (nread > 0) {
      self->readTail += static_cast<size_t>(nread);
    } else if (nread == UV_EOF) {
      self->readEof = true;
      // libuv stopped reading itself; keep our flag in step.
      uv_read_stop(self->tcp.asStream());
      self->reading = false;
      self->notifyDisconnected();
    } else if (nread < 0) {
      self->failRead(static_cast<int>(nread));
      return;
    }
    // nread == 0 is libuv's EAGAIN: nothing happened.
    self->satisfyPendingRead();
    self->updateReading();
  });
}

// =============================================================================================
// UvStream: writing

struct UvStream::WriteRequest {
  // One uv_write of the bytes uv_try_write could not send at once. Owns its copy, so libuv never
  // points at a caller's buffer; freed by onWriteDone(), which libuv always calls (with
  // UV_ECANCELED when the stream is closed first).
  uv_write_t req;
  kj::Array<kj::byte> data;
  PendingWrite* waiter = nullptr;  // Null once the caller dropped the promise.
};

class UvStream::PendingWrite {
public:
  PendingWrite(kj::PromiseFulfiller<void>& fulfiller, WriteRequest* request) : fulfiller(fulfiller), request(request) {
    request->waiter = this;
  }
  ~PendingWrite() noexcept {
    // Cancelled: the request carries on alone with its own copy, keeping the bytes in order.
    if (request != nullptr) request->waiter = nullptr;
  }
  KJ_DISALLOW_COPY(PendingWrite);

  kj::PromiseFulfiller<void>& fulfiller;
  WriteRequest* request;  // Null once libuv finished with it.
};

kj::Promise<void> UvStream::write(const void* buffer, size_t size) {
  auto piece = kj::arrayPtr(static_cast<const kj::byte*>(buffer), size);
  return write(kj::arrayPtr(&piece, 1));
}

kj::Promise<void> UvStream::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  KJ_IF_MAYBE(exception, writeError) { return kj::cp(*exception); }
  if (writeShut) { return KJ_EXCEPTION(FAILED, "write() after shutdownWrite()", peerName); }
  size_t total = 0;
  for (auto& piece : pieces) total += piece.size();
  if (total == 0) return kj::READY_NOW;
  KJ_REQUIRE(total <= UINT_MAX, "single write too large for libuv", total);

  // Try the socket first: usually it takes everything and nothing is copied. With writes already
  // queued it must not jump the queue (uv_try_write then refuses anyway).
  size_t written = 0;
  if (uv_stream_get_write_queue_size(tcp.asStream()) == 0) {
    kj::Vector<uv_buf_t> bufs(pieces.size());
    for (auto& piece : pieces) {
      if (piece.size() == 0) continue;
      bufs.add(uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(piece.begin())),
                           static_cast<unsigned int>(piece.size())));
    }
    int rc = uv_try_write(tcp.asStream(), bufs.begin(), static_cast<unsigned int>(bufs.size()));
    if (rc >= 0) {
      written = static_cast<size_t>(rc);
    } else if (rc != UV_EAGAIN) {
      return failWrite(rc);
    }
  }
  if (written == total) return kj::READY_NOW;

  size_t queued = uv_stream_get_write_queue_size(tcp.asStream());
  if (queued > UV_WRITE_QUEUE_BYTES_MAX) {
    return KJ_EXCEPTION(FAILED, "write queue over its limit: the peer is not reading", peerName, queued,
                        UV_WRITE_QUEUE_BYTES_MAX);
  }

  // Copy the unwritten remainder: the caller's buffers live only as long as the promise, and a
  // cancelled write must still finish (or the stream would be cut mid-message).
  auto request = std::make_unique<WriteRequest>();
  request->data = kj::heapArray<kj::byte>(total - written);
  size_t skip = written;
  kj::byte* out = request->data.begin();
  for (auto& piece : pieces) {
    if (skip >= piece.size()) {
      skip -= piece.size();
      continue;
    }
    size_t count = piece.size() - skip;
    memcpy(out, piece.begin() + skip, count);
    out += count;
    skip = 0;
  }
  request->req.data = request.get();
  uv_buf_t buf =
      uv_buf_init(reinterpret_cast<char*>(request->data.begin()), static_cast<unsigned int>(request->data.size()));
  int rc = uv_write(&request->req, tcp.asStream(), &buf, 1, &UvStream::onWriteDone);
  if (rc < 0) return failWrite(rc);
  return kj::newAdaptedPromise<void, PendingWrite>(request.release());
}

void UvStream::onWriteDone(uv_write_t* req, int status) {
  std::unique_ptr<WriteRequest> request(static_cast<WriteRequest*>(req->data));
  PendingWrite* waiter = request->waiter;
  if (waiter != nullptr) waiter->request = nullptr;
  auto* self = static_cast<UvStream*>(req->handle->data);  // Null once the stream is destroyed.
  if (self == nullptr) {
    if (waiter != nullptr) {
      // The writer broke KJ's rule (a stream outlives its promises); fail it rather than hang.
      KJ_IF_MAYBE(exception, kj::runCatchingExceptions([waiter]() {
                    waiter->fulfiller.reject(KJ_EXCEPTION(DISCONNECTED, "stream destroyed during a write"));
                  })) {
        KJ_LOG(ERROR, "cannot fail a write after its stream was destroyed", *exception);
      }
    }
    return;
  }
  runUvCallback(self->port, [self, waiter, status]() {
    if (status < 0) {
      kj::Exception exception = self->failWrite(status);
      if (waiter != nullptr) waiter->fulfiller.reject(kj::mv(exception));
    } else if (waiter != nullptr) {
      waiter->fulfiller.fulfill();
    }
  });
}

kj::Exception UvStream::failWrite(int code) {
  kj::Exception exception = uvException(code, kj::str("write to ", peerName));
  if (writeError == nullptr) writeError = kj::cp(exception);
  if (isUvDisconnect(code)) notifyDisconnected();
  return exception;
}

kj::Promise<void> UvStream::whenWriteDisconnected() { return disconnected.addBranch(); }

void UvStream::shutdownWrite() {
  if (writeShut) return;
  writeShut = true;
  if (writeError != nullptr) return;
  auto request = std::make_unique<uv_shutdown_t>();
  int rc = uv_shutdown(request.get(), tcp.asStream(), [](uv_shutdown_t* done, int) {
    // A failure here means the connection is already gone; reads and writes report that.
    delete done;
  });
  if (rc < 0) {
    if (isUvDisconnect(rc)) return;
    kj::throwFatalException(uvException(rc, kj::str("cannot shut down writes to ", peerName)));
  }
  request.release();
}

// =============================================================================================
// UvStream: socket options

void UvStream::getsockopt(int level, int option, void* value, kj::uint* length) {
  socklen_t socklen = *length;
  KJ_SYSCALL(::getsockopt(fd(), level, option, value, &socklen), peerName);
  *length = socklen;
}

void UvStream::setsockopt(int level, int option, const void* value, kj::uint length) {
  KJ_SYSCALL(::setsockopt(fd(), level, option, value, length), peerName);
}

void UvStream::getsockname(struct sockaddr* addr, kj::uint* length) {
  int namelen = static_cast<int>(*length);
  uvCheck(uv_tcp_getsockname(tcp.get(), addr, &namelen), kj::str("getsockname for ", peerName));
  *length = static_cast<kj::uint>(namelen);
}

void UvStream::getpeername(struct sockaddr* addr, kj::uint* length) {
  int namelen = static_cast<int>(*length);
  uvCheck(uv_tcp_getpeername(tcp.get(), addr, &namelen), kj::str("getpeername for ", peerName));
  *length = static_cast<kj::uint>(namelen);
}

// =============================================================================================
// connect()

namespace {

class ConnectOp {
  // Adapter behind connect() once the address is known. Owns the TCP handle until it connects;
  // dropping the promise closes the handle, and libuv then completes the request with UV_ECANCELED.

public:
  ConnectOp(kj::PromiseFulfiller<kj::Own<UvStream>>& fulfiller, UvEventPort& port, const sockaddr_storage& addr,
            kj::String label)
      : fulfiller(fulfiller), port(port), label(kj::mv(label)),
        tcp(UvHandle<uv_tcp_t>::make(port.getUvLoop(), "cannot create a TCP handle", uv_tcp_init)) {
    auto request = std::make_unique<Request>();
    request->op = this;
    request->req.data = request.get();
    int rc = uv_tcp_connect(&request->req, tcp.get(), reinterpret_cast<const sockaddr*>(&addr), &ConnectOp::onConnect);
    if (rc < 0) {
      fulfiller.reject(uvConnectException(rc, this->label));
      return;
    }
    this->request = request.release();
  }
  ~ConnectOp() noexcept {
    if (request != nullptr) request->op = nullptr;
  }
  KJ_DISALLOW_COPY(ConnectOp);

private:
  struct Request {
    uv_connect_t req;
    ConnectOp* op = nullptr;
  };

  kj::PromiseFulfiller<kj::Own<UvStream>>& fulfiller;
  UvEventPort& port;
  kj::String label;
  UvHandle<uv_tcp_t> tcp;
  Request* request = nullptr;

  static void onConnect(uv_connect_t* req, int status) {
    std::unique_ptr<Request> request(static_cast<Request*>(req->data));
    ConnectOp* self = request->op;
    if (self == nullptr) return;  // Cancelled.
    self->request = nullptr;
    runUvCallback(self->port, [self, status]() {
      if (status < 0) {
        self->fulfiller.reject(uvConnectException(status, self->label));
        return;
      }
      KJ_IF_MAYBE(exception, kj::runCatchingExceptions([self]() {
                    self->fulfiller.fulfill(kj::heap<UvStream>(self->port, kj::mv(self->tcp)));
                  })) {
        self->fulfiller.reject(kj::mv(*exception));
      }
    });
  }
};

class ResolveOp {
  // Adapter behind a name look-up (uv_getaddrinfo, in libuv's thread pool). Dropping the promise
  // cancels the look-up if it has not started; otherwise its result is discarded on arrival.

public:
  ResolveOp(kj::PromiseFulfiller<sockaddr_storage>& fulfiller, UvEventPort& port, kj::StringPtr host,
            uint16_t portNumber)
      : fulfiller(fulfiller), port(port), label(formatHostPort(host, portNumber)) {
    auto request = std::make_unique<Request>();
    request->op = this;
    request->req.data = request.get();
    addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    auto service = kj::str(portNumber);
    // libuv copies the host, service and hints.
    int rc =
        uv_getaddrinfo(&port.getUvLoop(), &request->req, &ResolveOp::onResolved, host.cStr(), service.cStr(), &hints);
    if (rc < 0) {
      fulfiller.reject(uvException(rc, kj::str("cannot resolve ", label)));
      return;
    }
    this->request = request.release();
  }
  ~ResolveOp() noexcept {
    if (request != nullptr) {
      request->op = nullptr;
      uv_cancel(reinterpret_cast<uv_req_t*>(&request->req));
    }
  }
  KJ_DISALLOW_COPY(ResolveOp);

private:
  struct Request {
    uv_getaddrinfo_t req;
    ResolveOp* op = nullptr;
  };

  kj::PromiseFulfiller<sockaddr_storage>& fulfiller;
  UvEventPort& port;
  kj::String label;
  Request* request = nullptr;

  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) {
    std::unique_ptr<Request> request(static_cast<Request*>(req->data));
    KJ_DEFER(if (result != nullptr) uv_freeaddrinfo(result));
    ResolveOp* self = request->op;
    if (self == nullptr) return;  // Cancelled.
    self->request = nullptr;
    runUvCallback(self->port, [self, status, result]() {
      if (status < 0) {
        // A name that does not resolve is the user's to fix, not a connection to retry.
        self->fulfiller.reject(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                                             kj::str("cannot resolve ", self->label, ": ", uv_strerror(status))));
        return;
      }
      for (addrinfo* entry = result; entry != nullptr; entry = entry->ai_next) {
        if (entry->ai_family == AF_INET || entry->ai_family == AF_INET6) {
          sockaddr_storage addr;
          memset(&addr, 0, sizeof(addr));
          memcpy(&addr, entry->ai_addr, entry->ai_addrlen);
          self->fulfiller.fulfill(kj::mv(addr));
          return;
        }
      }
      self->fulfiller.reject(KJ_EXCEPTION(FAILED, "name has no IP address", self->label));
    });
  }
};

}  // namespace

kj::Promise<kj::Own<UvStream>> connect(UvEventPort& port, kj::StringPtr host, uint16_t portNumber) {
  return kj::evalNow([&]() -> kj::Promise<kj::Own<UvStream>> {
    kj::String label = formatHostPort(host, portNumber);
    KJ_IF_MAYBE(addr, tryParseAddress(host, portNumber)) {
      return kj::newAdaptedPromise<kj::Own<UvStream>, ConnectOp>(port, *addr, kj::mv(label));
    }
    return kj::newAdaptedPromise<sockaddr_storage, ResolveOp>(port, host, portNumber)
        .then([&port, label = kj::mv(label)](sockaddr_storage&& addr) mutable {
          return kj::newAdaptedPromise<kj::Own<UvStream>, ConnectOp>(port, addr, kj::mv(label));
        });
  });
}

// =============================================================================================
// UvListener

class UvListener::PendingAccept {
public:
  PendingAccept(kj::PromiseFulfiller<kj::Own<UvStream>>& fulfiller, UvListener& listener)
      : fulfiller(fulfiller), listener(&listener) {
    listener.waiter = this;
  }
  ~PendingAccept() noexcept {
    if (listener != nullptr && listener->waiter == this) listener->waiter = nullptr;
  }
  KJ_DISALLOW_COPY(PendingAccept);

  kj::PromiseFulfiller<kj::Own<UvStream>>& fulfiller;
  UvListener* listener;  // Null once completed, or once the listener is gone.
};

UvListener::UvListener(UvEventPort& port, kj::StringPtr host, uint16_t portNumber, int backlog)
    : port(port), server(UvHandle<uv_tcp_t>::make(port.getUvLoop(), "cannot create a TCP handle", uv_tcp_init)),
      label(formatHostPort(host, portNumber)) {
  KJ_REQUIRE(backlog > 0, backlog);
  server->data = this;
  sockaddr_storage addr;
  KJ_IF_MAYBE(parsed, tryParseAddress(host, portNumber)) {
    addr = *parsed;
  } else {
    KJ_FAIL_REQUIRE("cannot listen: not a numeric IP address nor \"localhost\"", host);
  }
  uvCheck(uv_tcp_bind(server.get(), reinterpret_cast<const sockaddr*>(&addr), 0), kj::str("cannot bind ", label));
  // libuv reports some bind errors (address in use) only here.
  uvCheck(uv_listen(server.asStream(), backlog, &UvListener::onConnection), kj::str("cannot listen on ", label));
}

UvListener::~UvListener() noexcept {
  if (waiter != nullptr) {
    PendingAccept* accept = waiter;
    waiter = nullptr;
    accept->listener = nullptr;
    accept->fulfiller.reject(KJ_EXCEPTION(DISCONNECTED, "listener closed during accept()", label));
  }
}

uint16_t UvListener::getPort() const {
  sockaddr_storage addr;
  int length = sizeof(addr);
  uvCheck(uv_tcp_getsockname(server.get(), reinterpret_cast<sockaddr*>(&addr), &length),
          kj::str("cannot get the address of ", label));
  if (addr.ss_family == AF_INET6) { return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port); }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

kj::Promise<kj::Own<UvStream>> UvListener::accept() {
  KJ_REQUIRE(waiter == nullptr, "only one accept() at a time on a UvListener");
  KJ_IF_MAYBE(exception, acceptError) {
    kj::Exception failure = kj::mv(*exception);
    acceptError = nullptr;
    return kj::mv(failure);
  }
  if (connectionPending) {
    return kj::evalNow([this]() { return acceptNow(); });
  }
  return kj::newAdaptedPromise<kj::Own<UvStream>, PendingAccept>(*this);
}

kj::Own<UvStream> UvListener::acceptNow() {
  auto client = UvHandle<uv_tcp_t>::make(port.getUvLoop(), "cannot create a TCP handle", uv_tcp_init);
  // Whatever uv_accept() returns, libuv has consumed the connection and listens again.
  connectionPending = false;
  uvCheck(uv_accept(server.asStream(), client.asStream()), kj::str("cannot accept on ", label));
  return kj::heap<UvStream>(port, kj::mv(client));
}

void UvListener::onConnection(uv_stream_t* stream, int status) {
  auto* self = static_cast<UvListener*>(stream->data);
  if (self == nullptr) return;
  runUvCallback(self->port, [self, status]() {
    if (status < 0) {
      auto exception = uvException(status, kj::str("cannot accept on ", self->label));
      if (self->waiter != nullptr) {
        PendingAccept* accept = self->waiter;
        self->waiter = nullptr;
        accept->listener = nullptr;
        accept->fulfiller.reject(kj::mv(exception));
      } else {
        self->acceptError = kj::mv(exception);
      }
      return;
    }
    // Without a waiter, leave the connection with libuv: it stops accepting until uv_accept(), so
    // further connections queue in the kernel (bounded by the listen backlog), not here.
    self->connectionPending = true;
    if (self->waiter != nullptr) {
      PendingAccept* accept = self->waiter;
      self->waiter = nullptr;
      accept->listener = nullptr;
      KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&]() { accept->fulfiller.fulfill(self->acceptNow()); })) {
        accept->fulfiller.reject(kj::mv(*exception));
      }
    }
  });
}

}  // namespace kith::node
