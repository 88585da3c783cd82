#include "node/verify-pool.h"

#include <kj/debug.h>

#include <algorithm>
#include <atomic>

#include "node/limits.h"

namespace kith::node {

struct VerifyPool::Batch {
  std::vector<RawEntry> input;
  std::vector<Verified> results;
  std::atomic<size_t> chunksLeft{0};
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> done;
};

VerifyPool::VerifyPool(unsigned threads) : tasks_(*this) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, VERIFY_THREADS_MAX);
  workers_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this]() { work(); });
}

VerifyPool::~VerifyPool() noexcept(false) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& w : workers_) w.join();
  // Chunks nobody took: their batches will never finish. Their promises are rejected here: the
  // continuation that waits for a batch holds the batch (and so its fulfiller) itself.
  for (auto& chunk : chunks_) {
    if (chunk.batch->done) {
      chunk.batch->done->reject(KJ_EXCEPTION(DISCONNECTED, "the verifying pool was stopped"));
      chunk.batch->done = nullptr;
    }
  }
  chunks_.clear();
}

void VerifyPool::taskFailed(kj::Exception&&) {
  // The bookkeeping branch of a batch the pool dropped at shutdown: nothing to do.
}

kj::Promise<std::vector<Verified>> VerifyPool::verify(std::vector<RawEntry> input) {
  auto batch = std::make_shared<Batch>();
  batch->input = std::move(input);
  batch->results.resize(batch->input.size());
  if (batch->input.empty()) return std::vector<Verified>{};
  // The queue is full (or others wait already): wait for room, in turn. The first batch always
  // fits, however large.
  if (!waiting_.empty() || !fits(batch->input.size())) {
    auto paf = kj::newPromiseAndFulfiller<kj::Promise<std::vector<Verified>>>();
    waiting_.emplace_back(batch, kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }
  return start(batch);
}

bool VerifyPool::fits(size_t entries) const {
  return queuedEntries_ == 0 || queuedEntries_ + entries <= VERIFY_QUEUE_ENTRIES_MAX;
}

kj::Promise<std::vector<Verified>> VerifyPool::start(std::shared_ptr<Batch> batch) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  batch->done = kj::mv(paf.fulfiller);
  size_t n = batch->input.size();
  queuedEntries_ += n;
  auto finished = paf.promise.fork();
  // The count goes down when the workers are done, whether or not the caller still waits.
  tasks_.add(finished.addBranch().then(
      [this, n]() {
        queuedEntries_ -= n;
        admitWaiting();
      },
      [this, n](kj::Exception&&) {
        queuedEntries_ -= n;
        admitWaiting();
      }));
  size_t chunks = (n + VERIFY_CHUNK_ENTRIES - 1) / VERIFY_CHUNK_ENTRIES;
  batch->chunksLeft.store(chunks, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t begin = 0; begin < n; begin += VERIFY_CHUNK_ENTRIES) {
      chunks_.push_back({batch, begin, std::min(n, begin + VERIFY_CHUNK_ENTRIES)});
    }
  }
  ready_.notify_all();
  return finished.addBranch().then([batch]() { return std::move(batch->results); });
}

void VerifyPool::admitWaiting() {
  while (!waiting_.empty()) {
    auto& [batch, fulfiller] = waiting_.front();
    if (!fulfiller->isWaiting()) {  // its caller went away: nothing to verify
      waiting_.pop_front();
      continue;
    }
    if (!fits(batch->input.size())) return;
    auto admitted = kj::mv(waiting_.front());
    waiting_.pop_front();
    admitted.second->fulfill(start(admitted.first));
  }
}

void VerifyPool::work() {
  for (;;) {
    Chunk chunk;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this]() { return stopping_ || !chunks_.empty(); });
      if (stopping_) return;
      chunk = std::move(chunks_.front());
      chunks_.pop_front();
    }
    Batch& batch = *chunk.batch;
    for (size_t i = chunk.begin; i < chunk.end; ++i) {
      const RawEntry& raw = batch.input[i];
      Verified& out = batch.results[i];
      try {
        out.entry = protocol::decodeEntry(raw.entry, raw.signature);
      } catch (const protocol::EntryError& e) {
        out.reason = e.reason();
        out.message = e.what();
      } catch (const std::exception& e) {
        out.reason = protocol::Rejection::MALFORMED;
        out.message = e.what();
      }
    }
    if (batch.chunksLeft.fetch_sub(1, std::memory_order_acq_rel) == 1) batch.done->fulfill();
  }
}

}  // namespace kith::node
