// What one connection may make this node read and hold: the reader limits of its RPC system, and
// what it holds for its peer, metered (specs/replication.md, "What one connection may
// cost"): Cap'n Proto's own count of the bytes queued to the peer, with a wake-up after every write
// the socket finished, and the stream under the RPC system that stops reading the peer's next call
// while too much waits to be sent. Household sessions (node/session.cpp) and the relay
// (node/relay-server.cpp) both sit on it.
//
// Threading: the loop thread only.
// Caveats:
// - `network` is set by whoever owns the TwoPartyVatNetwork once it exists, and cleared before it
//   goes; while null the queue reads as empty.
// - A failed write releases every waiter and the queue reads as empty from then on: nothing will
//   be sent any more, and the connection is ending.
#pragma once
#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <memory>
#include <vector>

namespace kith::node {

// The reader limits of one connection's RPC system: at most `traversalWords` per message (what
// the largest message this side accepts needs) and RPC_NESTING_MAX deep.
capnp::ReaderOptions connectionReaderOptions(uint64_t traversalWords);

class SendQueueMeter {
public:
  size_t queued() const { return network != nullptr && !failed_ ? network->getCurrentQueueSize() : 0; }
  // Resolves once fewer than `bytes` wait to be sent (or the connection failed).
  kj::Promise<void> whenBelow(size_t bytes);
  // A write finished (ok) or failed.
  void written(bool ok);

  capnp::TwoPartyVatNetwork* network = nullptr;

private:
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> waiters_;
  bool failed_ = false;
};

// The stream under the RPC system: reading the peer's next call waits while `pauseReadBytes` or
// more wait to be sent; every write finishing wakes the meter's waiters.
class MeteredStream final : public kj::AsyncIoStream {
public:
  MeteredStream(kj::AsyncIoStream& inner, std::shared_ptr<SendQueueMeter> meter, size_t pauseReadBytes)
      : inner_(inner), meter_(kj::mv(meter)), pauseReadBytes_(pauseReadBytes) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override;
  kj::Promise<void> write(const void* buffer, size_t size) override;
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override;
  kj::Promise<void> whenWriteDisconnected() override { return inner_.whenWriteDisconnected(); }
  void shutdownWrite() override { inner_.shutdownWrite(); }
  void abortRead() override { inner_.abortRead(); }

private:
  kj::Promise<void> metered(kj::Promise<void> write);

  kj::AsyncIoStream& inner_;
  std::shared_ptr<SendQueueMeter> meter_;
  size_t pauseReadBytes_;
};

}  // namespace kith::node
