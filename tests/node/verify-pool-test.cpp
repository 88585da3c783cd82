// The verifying pool (node/verify-pool.h) on its own, on a real event loop with real worker
// threads: one result per entry in order, refusals with their reasons, a bounded queue that makes
// later batches wait (and still finish), and callers or the pool going away with work under way.

#include <sodium.h>

#include <memory>
#include <vector>

#include <kj/async.h>
#include <catch2/catch.hpp>

#include "crypto/keys.h"
#include "node/limits.h"
#include "node/uv/uv-event-port.h"
#include "node/verify-pool.h"
#include "protocol/entry.h"

namespace kith::node {
namespace {

// How long a test waits for the workers; generous, for ASan and a busy machine.
constexpr kj::Duration VERIFY_DEADLINE = 60 * kj::SECONDS;
constexpr kj::Duration POLL_INTERVAL = 10 * kj::MILLISECONDS;
// Entries of one test author's chain, signed once and reused by every batch.
constexpr size_t CHAIN_ENTRIES = 512;
constexpr size_t TEXT_BYTES = 120;

template <typename T>
T waitWithin(UvIoContext& io, kj::Promise<T> promise) {
  return io.getTimer().timeoutAfter(VERIFY_DEADLINE, kj::mv(promise)).wait(io.getWaitScope());
}

kj::Promise<bool> pollUntil(kj::Timer& timer, std::function<bool()> done, kj::TimePoint end) {
  if (done()) return true;
  if (timer.now() >= end) return false;
  return timer.afterDelay(POLL_INTERVAL).then([&timer, done = std::move(done), end]() mutable {
    return pollUntil(timer, std::move(done), end);
  });
}

bool waitFor(UvIoContext& io, std::function<bool()> done) {
  auto& timer = io.getTimer();
  return pollUntil(timer, std::move(done), timer.now() + VERIFY_DEADLINE).wait(io.getWaitScope());
}

// A chain of real signed entries (seq 2 onwards, so that no genesis binding is involved), as the
// network delivers them.
struct Chain {
  crypto::Identity author = crypto::Identity::generate();
  std::vector<protocol::Entry> entries;

  Chain() {
    Bytes epochKey(32);
    randombytes_buf(epochKey.data(), epochKey.size());
    protocol::EntryDraft draft;
    randombytes_buf(draft.journal.data(), draft.journal.size());
    randombytes_buf(draft.prev.data(), draft.prev.size());
    draft.seq = 2;
    draft.timestampMs = 1700000000000;
    for (size_t i = 0; i < CHAIN_ENTRIES; ++i) {
      draft.body =
          protocol::Body{protocol::Kind::UPDATE, "entry " + std::to_string(i) + std::string(TEXT_BYTES, 'x'), {}};
      entries.push_back(protocol::signEntry(author, draft, ByteView(epochKey.data(), epochKey.size())));
      draft.prev = entries.back().id;
      ++draft.seq;
    }
  }

  RawEntry raw(size_t i) const {
    const auto& e = entries[i % entries.size()];
    return {e.bytes, Bytes(e.signature.begin(), e.signature.end())};
  }
  // `count` entries from `first` (wrapping around the chain).
  std::vector<RawEntry> batch(size_t first, size_t count) const {
    std::vector<RawEntry> out;
    for (size_t i = 0; i < count; ++i) out.push_back(raw(first + i));
    return out;
  }
};

const Chain& chain() {
  static const Chain c;
  return c;
}

// What a batch submitted as chain().batch(first, count), with `flipped` and `garbage` spoiled, must
// come back as.
void checkResults(const std::vector<Verified>& results, size_t first, size_t count, std::optional<size_t> flipped,
                  std::optional<size_t> garbage) {
  REQUIRE(results.size() == count);
  for (size_t i = 0; i < count; ++i) {
    INFO("entry " << i << " of the batch");
    if (flipped && i == *flipped) {
      CHECK_FALSE(results[i].entry.has_value());
      CHECK(results[i].reason == protocol::Rejection::BAD_SIGNATURE);
      CHECK_FALSE(results[i].message.empty());
    } else if (garbage && i == *garbage) {
      CHECK_FALSE(results[i].entry.has_value());
      CHECK(results[i].reason == protocol::Rejection::MALFORMED);
      CHECK_FALSE(results[i].message.empty());
    } else {
      const auto& expected = chain().entries[(first + i) % CHAIN_ENTRIES];
      REQUIRE(results[i].entry.has_value());
      CHECK(results[i].entry->id == expected.id);
      CHECK(results[i].entry->seq == expected.seq);
      CHECK(results[i].entry->author == chain().author.publicKey());
    }
  }
}

void spoil(std::vector<RawEntry>& batch, std::optional<size_t> flipped, std::optional<size_t> garbage) {
  if (flipped) batch[*flipped].signature[7] ^= 0x01;
  if (garbage) batch[*garbage].entry = Bytes{0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
}

}  // namespace

TEST_CASE("verify pool: one result per entry, in order, refusals with their reasons", "[node][verify]") {
  UvIoContext io;
  VerifyPool pool(2);
  REQUIRE(pool.threadCount() == 2);
  // Several chunks, so that the workers share the batch; the spoiled entries sit in different chunks.
  constexpr size_t COUNT = 3 * VERIFY_CHUNK_ENTRIES + 17;
  constexpr size_t FLIPPED = VERIFY_CHUNK_ENTRIES + 5;
  constexpr size_t GARBAGE = 2 * VERIFY_CHUNK_ENTRIES + 9;
  auto batch = chain().batch(0, COUNT);
  spoil(batch, FLIPPED, GARBAGE);
  auto results = waitWithin(io, pool.verify(std::move(batch)));
  checkResults(results, 0, COUNT, FLIPPED, GARBAGE);

  // An empty batch answers at once; a batch of one works too.
  CHECK(waitWithin(io, pool.verify({})).empty());
  auto one = waitWithin(io, pool.verify(chain().batch(3, 1)));
  checkResults(one, 3, 1, std::nullopt, std::nullopt);
  CHECK(pool.queuedEntries() == 0);
}

TEST_CASE("verify pool: more batches than the queue holds wait their turn and all finish correctly", "[node][verify]") {
  UvIoContext io;
  VerifyPool pool;
  CHECK(pool.threadCount() >= 1);
  CHECK(pool.threadCount() <= VERIFY_THREADS_MAX);
  constexpr size_t BATCH = BATCH_ENTRIES_MAX;
  constexpr size_t BATCHES = VERIFY_QUEUE_ENTRIES_MAX / BATCH_ENTRIES_MAX * 3 / 2;  // 1.5 queues' worth
  static_assert(BATCHES * BATCH > VERIFY_QUEUE_ENTRIES_MAX, "some batches must wait");
  std::vector<kj::Promise<std::vector<Verified>>> promises;
  for (size_t b = 0; b < BATCHES; ++b) {
    auto batch = chain().batch(b, BATCH);
    spoil(batch, b % BATCH, (b * 7 + 3) % BATCH);
    promises.push_back(pool.verify(std::move(batch)));
    // Handed to the workers: never more than the queue's bound (the first batch always fits).
    CHECK(pool.queuedEntries() <= VERIFY_QUEUE_ENTRIES_MAX);
  }
  CHECK(pool.queuedEntries() > 0);
  for (size_t b = 0; b < BATCHES; ++b) {
    INFO("batch " << b);
    auto results = waitWithin(io, kj::mv(promises[b]));
    checkResults(results, b, BATCH, b % BATCH, (b * 7 + 3) % BATCH);
  }
  REQUIRE(waitFor(io, [&] { return pool.queuedEntries() == 0; }));
}

TEST_CASE("verify pool: a batch larger than the whole queue is still verified", "[node][verify]") {
  UvIoContext io;
  VerifyPool pool(2);
  constexpr size_t COUNT = VERIFY_QUEUE_ENTRIES_MAX + VERIFY_CHUNK_ENTRIES;
  auto big = pool.verify(chain().batch(0, COUNT));
  auto small = pool.verify(chain().batch(1, 1));  // waits for the big one
  checkResults(waitWithin(io, kj::mv(big)), 0, COUNT, std::nullopt, std::nullopt);
  checkResults(waitWithin(io, kj::mv(small)), 1, 1, std::nullopt, std::nullopt);
}

TEST_CASE("verify pool: dropping a promise under way or waiting leaves later batches unharmed", "[node][verify]") {
  UvIoContext io;
  VerifyPool pool(2);
  // A full queue under way, then batches that must wait for room.
  auto first = pool.verify(chain().batch(0, VERIFY_QUEUE_ENTRIES_MAX));
  auto waiting1 = pool.verify(chain().batch(1, BATCH_ENTRIES_MAX));
  auto waiting2 = pool.verify(chain().batch(2, BATCH_ENTRIES_MAX));
  auto kept = pool.verify(chain().batch(3, BATCH_ENTRIES_MAX));
  CHECK(pool.queuedEntries() == VERIFY_QUEUE_ENTRIES_MAX);  // only the first was handed over

  // The callers of the batch under way and of two waiting ones go away.
  { auto drop = kj::mv(first); }
  { auto drop = kj::mv(waiting1); }
  { auto drop = kj::mv(waiting2); }

  checkResults(waitWithin(io, kj::mv(kept)), 3, BATCH_ENTRIES_MAX, std::nullopt, std::nullopt);
  // A later batch, submitted after all that, finishes too; then nothing is left in the queue.
  auto later = chain().batch(4, 2 * VERIFY_CHUNK_ENTRIES);
  spoil(later, 0, VERIFY_CHUNK_ENTRIES);
  checkResults(waitWithin(io, pool.verify(std::move(later))), 4, 2 * VERIFY_CHUNK_ENTRIES, 0, VERIFY_CHUNK_ENTRIES);
  REQUIRE(waitFor(io, [&] { return pool.queuedEntries() == 0; }));
}

TEST_CASE("verify pool: destroying the pool with work queued is clean and leaves no caller hanging", "[node][verify]") {
  UvIoContext io;
  SECTION("callers still waiting: each batch either finished correctly or is rejected") {
    std::vector<kj::Promise<std::vector<Verified>>> promises;
    {
      VerifyPool pool(2);
      for (size_t b = 0; b < 4; ++b) promises.push_back(pool.verify(chain().batch(b, VERIFY_QUEUE_ENTRIES_MAX / 2)));
      promises.push_back(pool.verify(chain().batch(9, BATCH_ENTRIES_MAX)));
    }
    unsigned finished = 0;
    unsigned rejected = 0;
    for (size_t b = 0; b < promises.size(); ++b) {
      INFO("batch " << b);
      auto outcome =
          io.getTimer()
              .timeoutAfter(VERIFY_DEADLINE,
                            promises[b].then(
                                [](std::vector<Verified>&& r) { return kj::Maybe<std::vector<Verified>>(kj::mv(r)); },
                                [](kj::Exception&&) { return kj::Maybe<std::vector<Verified>>(nullptr); }))
              .wait(io.getWaitScope());
      KJ_IF_MAYBE(results, outcome) {
        ++finished;
        size_t count = b < 4 ? VERIFY_QUEUE_ENTRIES_MAX / 2 : BATCH_ENTRIES_MAX;
        checkResults(*results, b < 4 ? b : 9, count, std::nullopt, std::nullopt);
      } else {
        ++rejected;
      }
    }
    INFO(finished << " finished, " << rejected << " rejected");
    CHECK(finished + rejected == promises.size());
    CHECK(rejected >= 1);  // the last ones were still waiting for room when the pool went
  }
  SECTION("callers gone first") {
    VerifyPool pool(2);
    for (size_t b = 0; b < 4; ++b) { auto drop = pool.verify(chain().batch(b, VERIFY_QUEUE_ENTRIES_MAX / 2)); }
  }
  // The loop still works afterwards (nothing left armed by the pool).
  io.getTimer().afterDelay(POLL_INTERVAL).wait(io.getWaitScope());
}

}  // namespace kith::node
