// Signature checks on every core: received entries are decoded and verified
// (protocol::decodeEntry, an Ed25519 verify each) on a small pool of worker threads, so that the
// loop thread never spends its time on them and a busy node uses every core it has.
//
// A batch is submitted as raw bytes (copied out of the RPC message) and split into chunks of
// VERIFY_CHUNK_ENTRIES that any worker may take; the promise resolves, on the submitting loop
// thread, once every chunk is done, with each entry decoded or the reason it was refused.
//
// Threading: construct, submit() and destroy on the loop thread; the workers only run
// protocol::decodeEntry and fulfil a cross-thread promise (kj::newPromiseAndCrossThreadFulfiller
// wakes the loop through its event port).
// Caveats:
// - The pool's queue is bounded in entries (VERIFY_QUEUE_ENTRIES_MAX): submit() of a batch beyond
//   it waits (its promise resolves later) rather than block the loop or grow without end.
// - Dropping a batch's promise does not stop work already taken by a worker; its result is
//   discarded.
// - The destructor stops the workers after the chunk each is on; queued batches are dropped.
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <kj/async.h>

#include "protocol/entry.h"

namespace kith::node {

// One received entry, as it came: SignedEntry.entry and SignedEntry.signature.
struct RawEntry {
  Bytes entry;
  Bytes signature;
};

// The outcome of decoding one received entry: the entry, or why it was refused.
struct Verified {
  std::optional<protocol::Entry> entry;
  protocol::Rejection reason = protocol::Rejection::MALFORMED;
  std::string message;
};

class VerifyPool final : private kj::TaskSet::ErrorHandler {
public:
  // `threads` workers (0: one per core, at most VERIFY_THREADS_MAX).
  explicit VerifyPool(unsigned threads = 0);
  ~VerifyPool() noexcept(false);
  KJ_DISALLOW_COPY(VerifyPool);

  unsigned threadCount() const { return static_cast<unsigned>(workers_.size()); }

  // Decodes and verifies every entry of `batch` on the workers; resolves with one Verified per
  // entry, in order.
  kj::Promise<std::vector<Verified>> verify(std::vector<RawEntry> batch);

  // Entries submitted to the workers and not yet done (loop thread).
  size_t queuedEntries() const { return queuedEntries_; }

private:
  struct Batch;
  struct Chunk {
    std::shared_ptr<Batch> batch;
    size_t begin;
    size_t end;
  };
  bool fits(size_t entries) const;
  kj::Promise<std::vector<Verified>> start(std::shared_ptr<Batch> batch);
  void admitWaiting();
  void work();
  void taskFailed(kj::Exception&& exception) override;

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Chunk> chunks_;  // guarded by mutex_
  bool stopping_ = false;     // guarded by mutex_
  std::vector<std::thread> workers_;
  // Loop thread only: entries handed to the workers and not yet back, and batches waiting for room.
  size_t queuedEntries_ = 0;
  std::deque<std::pair<std::shared_ptr<Batch>, kj::Own<kj::PromiseFulfiller<kj::Promise<std::vector<Verified>>>>>>
      waiting_;
  kj::TaskSet tasks_;  // the bookkeeping of batches under way
};

}  // namespace kith::node
