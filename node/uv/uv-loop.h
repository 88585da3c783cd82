// libuv, wrapped once: the one place a libuv error code becomes a kj::Exception, an owning handle
// type that closes in its destructor and frees in the close callback, and `UvLoop`, which owns a
// `uv_loop_t` and checks at shutdown that every handle was closed.
//
// Everything in node/ that talks to libuv goes through these; callers never see a raw libuv code.
//
// Threading: a libuv loop and every handle on it belong to one thread (the thread that created the
// loop). Nothing here may be called from another thread; see UvEventPort::wake() for the one
// cross-thread entry point.
//
// Caveats:
// - `uv_close` completes on a later loop iteration, so a handle's memory outlives its owner: an
//   owner must never be reached from a libuv callback after its destructor ran. `UvHandle` clears
//   `handle->data` when it closes, and callbacks treat a null `data` as "owner gone".
// - `UvLoop::close()` must run after every handle owner was destroyed; it fails (and keeps the
//   loop) if a handle was leaked, naming the handle types still open.
// - `UvLoop::close()` waits for requests still in flight (a DNS look-up in libuv's thread pool
//   cannot be interrupted), so a shutdown during a look-up lasts as long as that look-up.

#pragma once

#include <kj/common.h>
#include <kj/exception.h>
#include <kj/string.h>
#include <uv.h>

namespace kith::node {

// ---------------------------------------------------------------------------------------------
// Errors

kj::Exception uvException(int code, kj::StringPtr what);
// Builds the exception for libuv error `code` (negative), with `what` as context: the message is
// "<what>: <uv_strerror(code)>". Codes that mean "the connection is gone" (end of stream, reset,
// broken pipe, refused, aborted, timed out, unreachable, cancelled by close) give a DISCONNECTED
// exception, so that callers can retry on a new connection; every other code gives FAILED.

kj::Exception uvConnectException(int code, kj::StringPtr address);
// uvException() for a failed outgoing connection to `address` ("HOST:PORT"): "connection refused
// to HOST:PORT" when nothing listens there, "cannot connect to HOST:PORT: <reason>" otherwise.

bool isUvDisconnect(int code);
// True if `code` is one of the codes uvException() maps to DISCONNECTED.

void uvCheck(int code, kj::StringPtr what);
// Throws uvException(code, what) if `code` is negative; for synchronous libuv calls.

// ---------------------------------------------------------------------------------------------
// Handles

template <typename Handle>
class UvHandle {
  // Owns one heap-allocated, initialised libuv handle. The destructor (or close()) calls uv_close;
  // the memory is freed by the close callback, on a later loop iteration. Move-only.

public:
  UvHandle() = default;
  ~UvHandle() noexcept { close(); }
  UvHandle(UvHandle&& other) noexcept : handle(other.handle) { other.handle = nullptr; }
  UvHandle& operator=(UvHandle&& other) noexcept {
    if (this != &other) {
      close();
      handle = other.handle;
      other.handle = nullptr;
    }
    return *this;
  }
  KJ_DISALLOW_COPY(UvHandle);

  template <typename Init, typename... Params>
  static UvHandle make(uv_loop_t& loop, kj::StringPtr what, Init init, Params&&... params) {
    // Allocates a handle and runs `init(&loop, handle, params...)` (uv_tcp_init, uv_timer_init).
    // Throws uvException(rc, what) if the init fails; the handle is then freed at once, since libuv
    // never saw it.
    Handle* raw = new Handle();
    int rc = init(&loop, raw, kj::fwd<Params>(params)...);
    if (rc < 0) {
      delete raw;
      kj::throwFatalException(uvException(rc, what));
    }
    UvHandle result;
    result.handle = raw;
    return result;
  }

  Handle* get() const { return handle; }
  Handle* operator->() const { return handle; }
  uv_handle_t* asHandle() const { return reinterpret_cast<uv_handle_t*>(handle); }
  uv_stream_t* asStream() const { return reinterpret_cast<uv_stream_t*>(handle); }
  explicit operator bool() const { return handle != nullptr; }

  void close() noexcept {
    // Stops the handle and hands its memory to libuv; idempotent.
    if (handle == nullptr) return;
    handle->data = nullptr;
    uv_close(asHandle(), [](uv_handle_t* closed) { delete reinterpret_cast<Handle*>(closed); });
    handle = nullptr;
  }

private:
  Handle* handle = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Loop

class UvLoop {
  // Owns a `uv_loop_t`. Destroy (or close()) it last, after every handle owner on it.

public:
  UvLoop();
  ~UvLoop() noexcept;
  KJ_DISALLOW_COPY(UvLoop);

  uv_loop_t& get();

  void close();
  // Runs the loop until closing handles and in-flight requests are done, then uv_loop_close().
  // Throws FAILED naming the handle types still open if a handle was never closed; the loop is then
  // kept, so the caller can close the handle and call close() again. Idempotent once it succeeded.

  size_t countOpenHandles() const;
  // Handles on this loop that were not closed (libuv's internal handles are not counted).

  kj::String describeOpenHandles() const;
  // "tcp, timer": the types of the handles countOpenHandles() counts, for error messages.

private:
  uv_loop_t* loop;  // Heap-allocated so that a failed close() can leak it rather than free it live.
};

}  // namespace kith::node
