// libuv error mapping and loop ownership; see uv-loop.h.

#include "node/uv/uv-loop.h"

#include <kj/debug.h>
#include <kj/vector.h>

namespace kith::node {

bool isUvDisconnect(int code) {
  switch (code) {
    case UV_EOF:
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_ECONNREFUSED:
    case UV_ECONNABORTED:
    case UV_ENOTCONN:
    case UV_ETIMEDOUT:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
    case UV_ENETDOWN:
    case UV_ECANCELED:
      return true;
    default:
      return false;
  }
}

kj::Exception uvException(int code, kj::StringPtr what) {
  KJ_ASSERT(code < 0, "uvException() needs a libuv error code", code);
  auto type = isUvDisconnect(code) ? kj::Exception::Type::DISCONNECTED : kj::Exception::Type::FAILED;
  return kj::Exception(type, __FILE__, __LINE__, kj::str(what, ": ", uv_strerror(code)));
}

kj::Exception uvConnectException(int code, kj::StringPtr address) {
  if (code == UV_ECONNREFUSED) {
    return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                         kj::str("connection refused to ", address));
  }
  return uvException(code, kj::str("cannot connect to ", address));
}

void uvCheck(int code, kj::StringPtr what) {
  if (code < 0) kj::throwFatalException(uvException(code, what));
}

UvLoop::UvLoop() : loop(new uv_loop_t()) {
  int rc = uv_loop_init(loop);
  if (rc < 0) {
    delete loop;
    uvCheck(rc, "cannot initialise the libuv loop");
  }
}

UvLoop::~UvLoop() noexcept {
  if (loop == nullptr) return;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([this]() { close(); })) {
    // The loop still has handles that point into it: leak it rather than free memory libuv uses.
    KJ_LOG(ERROR, "libuv loop leaked at shutdown", *e);
  }
}

uv_loop_t& UvLoop::get() {
  KJ_REQUIRE(loop != nullptr, "the libuv loop was already closed");
  return *loop;
}

size_t UvLoop::countOpenHandles() const {
  if (loop == nullptr) return 0;
  size_t count = 0;
  uv_walk(
      loop,
      [](uv_handle_t* handle, void* arg) {
        if (!uv_is_closing(handle)) ++*static_cast<size_t*>(arg);
      },
      &count);
  return count;
}

kj::String UvLoop::describeOpenHandles() const {
  if (loop == nullptr) return kj::str();
  kj::Vector<kj::StringPtr> types;
  uv_walk(
      loop,
      [](uv_handle_t* handle, void* arg) {
        if (!uv_is_closing(handle)) {
          static_cast<kj::Vector<kj::StringPtr>*>(arg)->add(uv_handle_type_name(uv_handle_get_type(handle)));
        }
      },
      &types);
  return kj::strArray(types, ", ");
}

void UvLoop::close() {
  if (loop == nullptr) return;
  if (countOpenHandles() == 0) {
    // Only closing handles and in-flight requests remain: running to completion is bounded.
    uv_run(loop, UV_RUN_DEFAULT);
  } else {
    // Something was leaked and would keep UV_RUN_DEFAULT going forever; finish what can finish.
    uv_run(loop, UV_RUN_NOWAIT);
  }
  int rc = uv_loop_close(loop);
  if (rc == UV_EBUSY) {
    KJ_FAIL_REQUIRE("libuv handles still open at shutdown; an owner outlived the loop", countOpenHandles(),
                    describeOpenHandles());
  }
  uvCheck(rc, "cannot close the libuv loop");
  delete loop;
  loop = nullptr;
}

}  // namespace kith::node
