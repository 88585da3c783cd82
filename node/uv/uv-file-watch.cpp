// A watch on one file; see uv-file-watch.h.

#include "node/uv/uv-file-watch.h"

#include <kj/debug.h>

namespace kith::node {

UvFileWatch::UvFileWatch(UvEventPort& port, kj::StringPtr path)
    : handle_(UvHandle<uv_fs_event_t>::make(port.getUvLoop(), "watching a file", uv_fs_event_init)) {
  handle_->data = this;
  uvCheck(uv_fs_event_start(handle_.get(), &UvFileWatch::onEvent, path.cStr(), 0),
          kj::str("watching ", path, " for changes"));
}

UvFileWatch::~UvFileWatch() noexcept(false) {
  if (handle_) uv_fs_event_stop(handle_.get());
}

kj::Promise<void> UvFileWatch::changed() {
  if (pending_) {
    pending_ = false;
    return kj::READY_NOW;
  }
  auto paf = kj::newPromiseAndFulfiller<void>();
  waiter_ = kj::mv(paf.fulfiller);
  return kj::mv(paf.promise);
}

void UvFileWatch::onEvent(uv_fs_event_t* handle, const char*, int, int status) {
  auto* self = static_cast<UvFileWatch*>(handle->data);
  if (self == nullptr) return;  // the owner is gone (closing)
  ++self->events_;
  // An error of the watch itself is reported as a change: the caller looks at the file and learns
  // more than we can say here.
  (void)status;
  KJ_IF_MAYBE(waiter, self->waiter_) {
    auto fulfiller = kj::mv(*waiter);
    self->waiter_ = nullptr;
    if (fulfiller->isWaiting()) {
      fulfiller->fulfill();
      return;
    }
  }
  self->pending_ = true;
}

}  // namespace kith::node
