// A watch on one file through libuv (inotify on Linux): `changed()` resolves when the file was
// written to, renamed or removed since the last call. `kith serve` watches its store's data file
// so that it learns of another process's commit (`kith post`) at once, without polling.
//
// Threading: loop thread only, like the UvEventPort it is built on.
// Caveats:
// - Events are coalesced: many writes between two calls give one wake-up. A write that happens
//   after changed() resolved and before the next call is not lost: the next call resolves at once.
// - A file on a file system without change notification (some network file systems) never
//   reports; the watch cannot tell, so whoever uses it keeps a slow poll as a safety net.
// - Building the watch throws (uvException) when the system refuses it (e.g. out of inotify
//   watches: fs.inotify.max_user_watches / max_user_instances).
#pragma once

#include <kj/async.h>

#include "node/uv/uv-event-port.h"
#include "node/uv/uv-loop.h"

namespace kith::node {

class UvFileWatch {
public:
  UvFileWatch(UvEventPort& port, kj::StringPtr path);
  ~UvFileWatch() noexcept(false);
  KJ_DISALLOW_COPY(UvFileWatch);

  // Resolves at the next change (at once when one came since the last call). One caller at a time.
  kj::Promise<void> changed();
  // Changes reported so far (for tests and the log).
  uint64_t events() const { return events_; }

private:
  static void onEvent(uv_fs_event_t* handle, const char* filename, int events, int status);

  UvHandle<uv_fs_event_t> handle_;
  bool pending_ = false;
  uint64_t events_ = 0;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> waiter_;
};

}  // namespace kith::node
