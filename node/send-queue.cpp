#include "node/send-queue.h"

#include "node/limits.h"

namespace kith::node {

capnp::ReaderOptions connectionReaderOptions(uint64_t traversalWords) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = traversalWords;
  options.nestingLimit = RPC_NESTING_MAX;
  return options;
}

kj::Promise<void> SendQueueMeter::whenBelow(size_t bytes) {
  if (queued() < bytes) return kj::READY_NOW;
  // Something waits, so a write is under way: look again when it has finished. Cap'n Proto takes
  // the finished message off its count in an event of its own after the write, so look only once
  // the event loop has nothing else to do (evalLast), or a wake-up could be lost.
  auto paf = kj::newPromiseAndFulfiller<void>();
  waiters_.push_back(kj::mv(paf.fulfiller));
  return paf.promise.then([]() { return kj::evalLast([]() {}); }).then([this, bytes]() { return whenBelow(bytes); });
}

void SendQueueMeter::written(bool ok) {
  if (!ok) failed_ = true;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& f : waiters) f->fulfill();
}

kj::Promise<size_t> MeteredStream::tryRead(void* buffer, size_t minBytes, size_t maxBytes) {
  // The peer's next call could add to what we hold for it: read it only once the socket has taken
  // most of what waits.
  return meter_->whenBelow(pauseReadBytes_).then([this, buffer, minBytes, maxBytes]() {
    return inner_.tryRead(buffer, minBytes, maxBytes);
  });
}

kj::Promise<void> MeteredStream::write(const void* buffer, size_t size) { return metered(inner_.write(buffer, size)); }

kj::Promise<void> MeteredStream::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  return metered(inner_.write(pieces));
}

kj::Promise<void> MeteredStream::metered(kj::Promise<void> write) {
  auto meter = meter_;
  return write.then([meter]() { meter->written(true); },
                    [meter](kj::Exception&& e) {
                      meter->written(false);
                      kj::throwFatalException(kj::mv(e));
                    });
}

}  // namespace kith::node
