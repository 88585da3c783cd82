// The relay's store (store/relay-store.h): admission, quotas, the disk cap, dedupe, rotation,
// retention and reopening, each checked against what was put; and a random walk of puts, gets and
// removals compared with a simple in-memory model.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>

#include "base/error.h"
#include "crypto/keys.h"
#include "store/relay-store.h"
#include "store/store.h"
#include "tests/support/errors.h"
#include "tests/support/seed.h"
#include "tests/support/temp-dir.h"

namespace kith::store {
namespace {

using test::TempDir;

constexpr int64_t START_MS = 1'700'000'000'000;

// A clock the test moves by hand.
struct TestClock {
  int64_t ms = START_MS;
  std::function<int64_t()> fn() {
    return [this]() { return ms; };
  }
};

RelayPolicy roomyPolicy() {
  RelayPolicy p;
  p.admission = RelayAdmission::OPEN;
  p.mailboxQuotaBytes = 1 << 20;
  p.mailboxQuotaEnvelopes = 1000;
  p.diskCapBytes = 8 << 20;
  p.mailboxesMax = 100;
  p.retentionDays = 30;
  return p;
}

Key32 randomKey() {
  Key32 k;
  crypto::randomBytes(k);
  return k;
}

Bytes envelope(size_t size, uint8_t fill) { return Bytes(size, fill); }

struct Keys {
  Key32 id = randomKey();
  Key32 credential = randomKey();
  Key32 admin = randomKey();
};

std::unique_ptr<RelayStore> openStore(const TempDir& dir, RelayPolicy policy, TestClock& clock, bool create = true) {
  RelayStoreOptions options;
  options.create = create;
  options.clock = clock.fn();
  return std::make_unique<RelayStore>(dir / "relay", policy, options);
}

PutOutcome putAll(RelayStore& s, const Key32& id, const std::vector<Bytes>& envelopes) {
  std::vector<ByteView> views(envelopes.begin(), envelopes.end());
  return s.put(id, views);
}

std::vector<Bytes> dataOf(const GetOutcome& g) {
  std::vector<Bytes> out;
  for (const auto& e : g.envelopes) out.push_back(e.data);
  return out;
}

TEST_CASE("a mailbox is created once and again with the same keys but not with others", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  auto s = openStore(dir, roomyPolicy(), clock);
  Keys k;
  CHECK_FALSE(s->create(k.id, k.credential, k.admin, {}));
  CHECK_FALSE(s->create(k.id, k.credential, k.admin, {}));
  auto other = s->create(k.id, randomKey(), k.admin, {});
  REQUIRE(other);
  CHECK(other->kind == RelayRefusalKind::MAILBOX_EXISTS);
  auto otherAdmin = s->create(k.id, k.credential, randomKey(), {});
  REQUIRE(otherAdmin);
  CHECK(otherAdmin->kind == RelayRefusalKind::MAILBOX_EXISTS);
  auto m = s->mailbox(k.id);
  REQUIRE(m);
  CHECK(m->credential == k.credential);
  CHECK(m->admin == k.admin);
  CHECK_FALSE(m->closed);
  CHECK(m->createdMs == START_MS);
  CHECK(s->totals().mailboxesOpen == 1);
}

TEST_CASE("a token relay admits a valid token for as many mailboxes as it allows", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.admission = RelayAdmission::TOKEN;
  auto s = openStore(dir, policy, clock);
  Bytes token(RELAY_TOKEN_BYTES);
  crypto::randomBytes(token);
  s->addToken(token, 2);
  Keys a, b, c;
  auto none = s->create(a.id, a.credential, a.admin, {});
  REQUIRE(none);
  CHECK(none->kind == RelayRefusalKind::TOKEN_REQUIRED);
  Bytes forged(RELAY_TOKEN_BYTES, 7);
  auto unknown = s->create(a.id, a.credential, a.admin, forged);
  REQUIRE(unknown);
  CHECK(unknown->kind == RelayRefusalKind::TOKEN_UNKNOWN);
  CHECK_FALSE(s->create(a.id, a.credential, a.admin, token));
  // Creating the same mailbox again uses nothing.
  CHECK_FALSE(s->create(a.id, a.credential, a.admin, token));
  CHECK_FALSE(s->create(b.id, b.credential, b.admin, token));
  auto exhausted = s->create(c.id, c.credential, c.admin, token);
  REQUIRE(exhausted);
  CHECK(exhausted->kind == RelayRefusalKind::TOKEN_USED_UP);
  CHECK_FALSE(s->mailbox(c.id));
  CHECK(s->totals().mailboxesOpen == 2);
  CHECK(s->totals().tokens == 1);
}

TEST_CASE("an open relay refuses mailboxes past its maximum", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.mailboxesMax = 2;
  auto s = openStore(dir, policy, clock);
  Keys a, b, c;
  CHECK_FALSE(s->create(a.id, a.credential, a.admin, {}));
  CHECK_FALSE(s->create(b.id, b.credential, b.admin, {}));
  auto full = s->create(c.id, c.credential, c.admin, {});
  REQUIRE(full);
  CHECK(full->kind == RelayRefusalKind::MAILBOXES_FULL);
  CHECK(s->remove(a.id));
  CHECK_FALSE(s->create(c.id, c.credential, c.admin, {}));
}

TEST_CASE("a put past the mailbox's byte or envelope quota stores nothing", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.mailboxQuotaBytes = 3000;
  policy.mailboxQuotaEnvelopes = 4;
  auto s = openStore(dir, policy, clock);
  Keys k;
  REQUIRE_FALSE(s->create(k.id, k.credential, k.admin, {}));
  auto first = putAll(*s, k.id, {envelope(1000, 1), envelope(1000, 2)});
  CHECK_FALSE(first.refusal);
  CHECK(first.stored == 2);
  CHECK(first.cursor == 2);

  SECTION("bytes") {
    auto over = putAll(*s, k.id, {envelope(500, 3), envelope(600, 4)});
    REQUIRE(over.refusal);
    CHECK(over.refusal->kind == RelayRefusalKind::MAILBOX_FULL);
    CHECK(over.refusal->message == "mailbox full: 2000 of 3000 bytes (quota)");
  }
  SECTION("envelopes") {
    auto over = putAll(*s, k.id, {envelope(10, 3), envelope(10, 4), envelope(10, 5)});
    REQUIRE(over.refusal);
    CHECK(over.refusal->kind == RelayRefusalKind::MAILBOX_FULL);
    CHECK(over.refusal->message == "mailbox full: 2 of 4 envelopes (quota)");
  }
  auto g = s->get(k.id, 0, 100, 1 << 20);
  CHECK(g.envelopes.size() == 2);
  auto m = s->mailbox(k.id);
  CHECK(m->envelopes == 2);
  CHECK(m->bytes == 2000);
  CHECK(m->lastCursor == 2);
  CHECK(s->totals().bytes == 2000);
}

TEST_CASE("a put past the relay's disk cap stores nothing in any mailbox", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.diskCapBytes = 2500;
  auto s = openStore(dir, policy, clock);
  Keys a, b;
  REQUIRE_FALSE(s->create(a.id, a.credential, a.admin, {}));
  REQUIRE_FALSE(s->create(b.id, b.credential, b.admin, {}));
  CHECK_FALSE(putAll(*s, a.id, {envelope(1000, 1), envelope(1000, 2)}).refusal);
  auto full = putAll(*s, b.id, {envelope(400, 3), envelope(400, 4)});
  REQUIRE(full.refusal);
  CHECK(full.refusal->kind == RelayRefusalKind::RELAY_FULL);
  CHECK(s->get(b.id, 0, 100, 1 << 20).envelopes.empty());
  CHECK(s->totals().bytes == 2000);
  CHECK(s->totals().envelopes == 2);
}

TEST_CASE("an envelope held already is not stored again", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  auto s = openStore(dir, roomyPolicy(), clock);
  Keys a, b;
  REQUIRE_FALSE(s->create(a.id, a.credential, a.admin, {}));
  REQUIRE_FALSE(s->create(b.id, b.credential, b.admin, {}));
  auto first = putAll(*s, a.id, {envelope(100, 1), envelope(100, 1), envelope(100, 2)});
  CHECK(first.stored == 2);
  CHECK(first.cursor == 2);
  auto again = putAll(*s, a.id, {envelope(100, 2), envelope(100, 1)});
  CHECK_FALSE(again.refusal);
  CHECK(again.stored == 0);
  CHECK(again.cursor == 2);
  // The same bytes in another mailbox are that mailbox's own.
  CHECK(putAll(*s, b.id, {envelope(100, 1)}).stored == 1);
  CHECK(s->get(a.id, 0, 100, 1 << 20).envelopes.size() == 2);
  CHECK(s->totals().envelopes == 3);
}

TEST_CASE("rotating closes the old mailbox which refuses puts but still answers gets", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.admission = RelayAdmission::TOKEN;
  auto s = openStore(dir, policy, clock);
  Bytes token(RELAY_TOKEN_BYTES, 9);
  s->addToken(token, 1);
  Keys k;
  REQUIRE_FALSE(s->create(k.id, k.credential, k.admin, token));
  REQUIRE(putAll(*s, k.id, {envelope(100, 1)}).stored == 1);
  clock.ms += 1000;
  Keys next;
  // Rotating uses no mailbox of the token (it had one, used).
  CHECK_FALSE(s->rotate(k.id, next.id, next.credential));
  auto old = s->mailbox(k.id);
  REQUIRE(old);
  CHECK(old->closed);
  CHECK(old->closedMs == START_MS + 1000);
  auto made = s->mailbox(next.id);
  REQUIRE(made);
  CHECK_FALSE(made->closed);
  CHECK(made->admin == k.admin);
  CHECK(made->credential == next.credential);
  CHECK(made->tokenHash == old->tokenHash);

  auto refused = putAll(*s, k.id, {envelope(100, 2)});
  REQUIRE(refused.refusal);
  CHECK(refused.refusal->kind == RelayRefusalKind::MAILBOX_CLOSED);
  CHECK(refused.refusal->message == "mailbox closed");
  auto g = s->get(k.id, 0, 100, 1 << 20);
  CHECK(g.closed);
  CHECK(g.envelopes.size() == 1);
  CHECK(s->totals().mailboxesOpen == 1);
  CHECK(s->totals().mailboxesClosed == 1);

  // A retried rotate is a no-op; another credential for the new id is refused; a closed mailbox
  // rotates to nothing new.
  CHECK_FALSE(s->rotate(k.id, next.id, next.credential));
  auto clash = s->rotate(k.id, next.id, randomKey());
  REQUIRE(clash);
  CHECK(clash->kind == RelayRefusalKind::MAILBOX_EXISTS);
  auto again = s->rotate(k.id, randomKey(), randomKey());
  REQUIRE(again);
  CHECK(again->kind == RelayRefusalKind::MAILBOX_CLOSED);
  auto unknown = s->rotate(randomKey(), randomKey(), randomKey());
  REQUIRE(unknown);
  CHECK(unknown->kind == RelayRefusalKind::NO_MAILBOX);
  CHECK(s->totals().mailboxesOpen == 1);
}

TEST_CASE("a get answers from a cursor within its count and byte bounds", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  auto s = openStore(dir, roomyPolicy(), clock);
  Keys k;
  REQUIRE_FALSE(s->create(k.id, k.credential, k.admin, {}));
  std::vector<Bytes> all;
  for (uint8_t i = 1; i <= 10; ++i) all.push_back(envelope(100, i));
  REQUIRE(putAll(*s, k.id, all).stored == 10);
  auto g = s->get(k.id, 3, 4, 1 << 20);
  REQUIRE(g.envelopes.size() == 4);
  CHECK(g.envelopes[0].cursor == 4);
  CHECK(g.cursor == 7);
  CHECK(g.envelopes[0].data == all[3]);
  auto small = s->get(k.id, 0, 100, 250);
  CHECK(small.envelopes.size() == 2);
  // One envelope is answered even when it alone passes the byte bound.
  CHECK(s->get(k.id, 0, 100, 10).envelopes.size() == 1);
  auto end = s->get(k.id, 10, 100, 1 << 20);
  CHECK(end.found);
  CHECK(end.envelopes.empty());
  CHECK(end.cursor == 10);
  CHECK_FALSE(s->get(randomKey(), 0, 100, 1 << 20).found);
}

TEST_CASE("retention drops the envelopes older than its days and keeps cursors increasing", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.retentionDays = 2;
  auto s = openStore(dir, policy, clock);
  Keys k;
  REQUIRE_FALSE(s->create(k.id, k.credential, k.admin, {}));
  REQUIRE(putAll(*s, k.id, {envelope(100, 1), envelope(100, 2)}).stored == 2);
  clock.ms += RELAY_DAY_MS;
  REQUIRE(putAll(*s, k.id, {envelope(100, 3)}).stored == 1);
  clock.ms += RELAY_DAY_MS + 1;
  SweepOutcome out = s->sweep();
  CHECK(out.envelopesDropped == 2);
  CHECK(out.bytesDropped == 200);
  CHECK(out.mailboxesDeleted == 0);
  auto g = s->get(k.id, 0, 100, 1 << 20);
  REQUIRE(g.envelopes.size() == 1);
  CHECK(g.envelopes[0].cursor == 3);
  auto m = s->mailbox(k.id);
  CHECK(m->firstCursor == 3);
  CHECK(m->envelopes == 1);
  CHECK(s->totals().envelopes == 1);
  CHECK(s->totals().bytes == 100);
  // A dropped envelope put again is stored anew, at a new cursor.
  auto again = putAll(*s, k.id, {envelope(100, 1)});
  CHECK(again.stored == 1);
  CHECK(again.cursor == 4);
  // Nothing young is dropped.
  CHECK(s->sweep().envelopesDropped == 0);
}

TEST_CASE("a closed mailbox is deleted with its envelopes 30 days after it was closed", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.retentionDays = 365;
  auto s = openStore(dir, policy, clock);
  Keys k, next;
  REQUIRE_FALSE(s->create(k.id, k.credential, k.admin, {}));
  REQUIRE(putAll(*s, k.id, {envelope(100, 1)}).stored == 1);
  REQUIRE_FALSE(s->rotate(k.id, next.id, next.credential));
  clock.ms += RELAY_CLOSED_KEEP_DAYS * RELAY_DAY_MS - 1;
  CHECK(s->sweep().mailboxesDeleted == 0);
  CHECK(s->mailbox(k.id));
  clock.ms += 2;
  SweepOutcome out = s->sweep();
  CHECK(out.mailboxesDeleted == 1);
  CHECK(out.envelopesDropped == 1);
  CHECK_FALSE(s->mailbox(k.id));
  CHECK(s->mailbox(next.id));
  RelayTotals t = s->totals();
  CHECK(t.mailboxesClosed == 0);
  CHECK(t.mailboxesOpen == 1);
  CHECK(t.envelopes == 0);
  CHECK(t.bytes == 0);
}

TEST_CASE("reopening the relay's store keeps mailboxes envelopes tokens and totals", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.admission = RelayAdmission::TOKEN;
  Keys k;
  Bytes token(RELAY_TOKEN_BYTES, 5);
  {
    auto s = openStore(dir, policy, clock);
    s->addToken(token, 1);
    REQUIRE_FALSE(s->create(k.id, k.credential, k.admin, token));
    REQUIRE(putAll(*s, k.id, {envelope(100, 1), envelope(200, 2)}).stored == 2);
  }
  auto s = openStore(dir, policy, clock, false);
  auto g = s->get(k.id, 0, 100, 1 << 20);
  CHECK(dataOf(g) == std::vector<Bytes>{envelope(100, 1), envelope(200, 2)});
  RelayTotals t = s->totals();
  CHECK(t.mailboxesOpen == 1);
  CHECK(t.envelopes == 2);
  CHECK(t.bytes == 300);
  CHECK(t.tokens == 1);
  // The token's one mailbox is used.
  Keys other;
  auto used = s->create(other.id, other.credential, other.admin, token);
  REQUIRE(used);
  CHECK(used->kind == RelayRefusalKind::TOKEN_USED_UP);
  // Cursors go on from where they were.
  CHECK(putAll(*s, k.id, {envelope(100, 3)}).cursor == 3);
}

TEST_CASE("a folder without a relay store or with a household's is refused", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  CHECK(test::errorKindOf([&] { openStore(dir, roomyPolicy(), clock, false); }) == ErrorKind::CORRUPT);
  std::filesystem::create_directory(dir / "relay");
  Store::open(dir / "relay");  // a household's store where the relay's would be
  CHECK(test::errorKindOf([&] { openStore(dir, roomyPolicy(), clock, true); }) == ErrorKind::CORRUPT);
}

TEST_CASE("removing a mailbox deletes its envelopes and a put to it is refused", "[relay][store]") {
  TempDir dir;
  TestClock clock;
  auto s = openStore(dir, roomyPolicy(), clock);
  Keys k;
  REQUIRE_FALSE(s->create(k.id, k.credential, k.admin, {}));
  REQUIRE(putAll(*s, k.id, {envelope(100, 1)}).stored == 1);
  CHECK(s->remove(k.id));
  CHECK_FALSE(s->remove(k.id));
  auto refused = putAll(*s, k.id, {envelope(100, 2)});
  REQUIRE(refused.refusal);
  CHECK(refused.refusal->kind == RelayRefusalKind::NO_MAILBOX);
  CHECK(s->totals().envelopes == 0);
  CHECK(s->totals().mailboxesOpen == 0);
}

TEST_CASE("random puts gets and sweeps agree with a model of the mailboxes", "[relay][store]") {
  uint64_t seed = test::testSeed("relay store model");
  std::mt19937_64 rng(seed);
  TempDir dir;
  TestClock clock;
  RelayPolicy policy = roomyPolicy();
  policy.mailboxQuotaEnvelopes = 40;
  policy.retentionDays = 3;
  auto s = openStore(dir, policy, clock);
  struct Held {
    uint64_t cursor;
    int64_t ms;
    Bytes data;
  };
  struct Model {
    uint64_t last = 0;
    std::vector<Held> held;
  };
  std::vector<Keys> keys(4);
  std::map<size_t, Model> model;
  for (size_t i = 0; i < keys.size(); ++i) REQUIRE_FALSE(s->create(keys[i].id, keys[i].credential, keys[i].admin, {}));
  for (int step = 0; step < 400; ++step) {
    size_t box = rng() % keys.size();
    Model& m = model[box];
    switch (rng() % 4) {
      case 0:
      case 1: {
        std::vector<Bytes> batch;
        size_t n = 1 + rng() % 5;
        for (size_t i = 0; i < n; ++i) batch.push_back(envelope(16 + rng() % 4, static_cast<uint8_t>(rng() % 12)));
        // What the model stores: the new distinct envelopes, unless the quota refuses all.
        std::vector<Bytes> fresh;
        for (const auto& e : batch) {
          bool known = std::find(fresh.begin(), fresh.end(), e) != fresh.end();
          for (const auto& h : m.held) known = known || h.data == e;
          if (!known) fresh.push_back(e);
        }
        auto out = putAll(*s, keys[box].id, batch);
        if (m.held.size() + fresh.size() > policy.mailboxQuotaEnvelopes) {
          REQUIRE(out.refusal);
          CHECK(out.refusal->kind == RelayRefusalKind::MAILBOX_FULL);
        } else {
          REQUIRE_FALSE(out.refusal);
          CHECK(out.stored == fresh.size());
          for (auto& e : fresh) m.held.push_back(Held{++m.last, clock.ms, e});
          CHECK(out.cursor == m.last);
        }
        break;
      }
      case 2: {
        uint64_t after = m.last == 0 ? 0 : rng() % (m.last + 1);
        auto g = s->get(keys[box].id, after, 1000, 1 << 20);
        std::vector<Bytes> expected;
        for (const auto& h : m.held) {
          if (h.cursor > after) expected.push_back(h.data);
        }
        CHECK(dataOf(g) == expected);
        break;
      }
      case 3: {
        clock.ms += static_cast<int64_t>(rng() % (RELAY_DAY_MS / 2));
        s->sweep();
        int64_t before = clock.ms - int64_t{policy.retentionDays} * RELAY_DAY_MS;
        for (auto& [_, mm] : model) {
          std::erase_if(mm.held, [&](const Held& h) { return h.ms < before; });
        }
        break;
      }
    }
  }
  uint64_t envelopes = 0;
  for (const auto& [_, m] : model) envelopes += m.held.size();
  CHECK(s->totals().envelopes == envelopes);
}

}  // namespace
}  // namespace kith::store
