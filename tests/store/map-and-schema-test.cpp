// The LMDB map growing when full (and refusing more at its maximum without losing anything), and
// the schema version a store is written with.
#include <catch2/catch.hpp>

#include <optional>

#include "store/lmdb.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

TEST_CASE("the map grows when full and every entry stays readable", "[store]") {
  TempDir dir;
  Person owner("owner");
  Keyring kr = owner.keyring();
  const StoreOptions options{size_t{1} << 20, size_t{64} << 20};
  auto store = Store::open(dir.path(), options);
  CHECK(store->mapBytes() == options.mapBytesInitial);
  JournalId j = createJournal(*store, kr, "a long illness");
  Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));

  auto entries = chainOf(owner, j, *store->head(j, owner.key()), 3000, 1024, key);
  for (size_t at = 0; at < entries.size(); at += 250) {
    std::vector<Entry> batch(entries.begin() + static_cast<long>(at),
                             entries.begin() + static_cast<long>(std::min(at + 250, entries.size())));
    for (const auto& out : store->appendBatch(batch, &kr)) REQUIRE(out.status == AppendStatus::ADDED);
  }
  // appendNext (post) grows the map as well.
  Entry last = post(*store, kr, j, Body{Kind::UPDATE, std::string(4000, 'z'), {}});
  CHECK(last.seq == 3002);
  size_t grown = store->mapBytes();
  CHECK(grown > options.mapBytesInitial);
  CHECK(grown <= options.mapBytesMax);

  store.reset();
  store = Store::open(dir.path(), options);
  // LMDB maps at least what the file holds (not the size it last grew to).
  CHECK(store->mapBytes() > options.mapBytesInitial);
  CHECK(store->journal(j)->entryCount == 3002);
  size_t seen = 0;
  for (uint64_t from = 2; from <= 3001; from += 1000) {
    auto range = store->range(j, owner.key(), from, 1000);
    REQUIRE(range.size() == 1000);
    for (const Entry& e : range) CHECK(e.id == entries[seen++].id);
  }
  auto read = readJournal(*store, kr, j);
  REQUIRE(read.size() == 3002);
  size_t readable = 0;
  for (const auto& r : read) readable += r.body.has_value() ? 1 : 0;
  CHECK(readable == 3002);
}

TEST_CASE("a map at its maximum size refuses more and loses nothing", "[store]") {
  TempDir dir;
  Person owner("owner");
  Keyring kr = owner.keyring();
  const StoreOptions small{size_t{1} << 20, size_t{2} << 20};
  auto store = Store::open(dir.path(), small);
  JournalId j = createJournal(*store, kr, "small");
  Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));

  std::vector<Entry> committed, failed;
  std::optional<Error> full;
  Head head = *store->head(j, owner.key());
  for (int batches = 0; batches < 50 && !full; ++batches) {
    auto batch = chainOf(owner, j, head, 100, 1024, key);
    try {
      for (const auto& out : store->appendBatch(batch, &kr)) REQUIRE(out.status == AppendStatus::ADDED);
      committed.insert(committed.end(), batch.begin(), batch.end());
      head = Head{batch.back().seq, batch.back().id};
    } catch (const Error& e) {
      full = e;
      failed = batch;
    }
  }
  REQUIRE(full.has_value());
  REQUIRE(!committed.empty());
  CHECK(std::string(kindName(full->kind())) == "IO");
  CHECK_THAT(std::string(full->what()), Catch::Matchers::Contains("maximum size"));
  CHECK_FALSE(full->hint().empty());
  CHECK(store->mapBytes() == small.mapBytesMax);
  // The same batch fails the same way again; reads still work.
  Error again = errorOf([&] { store->appendBatch(failed, &kr); });
  CHECK(std::string(kindName(again.kind())) == "IO");
  CHECK(store->head(j, owner.key())->seq == 1 + committed.size());

  // Everything committed before is there after a reopen; nothing of the failed batch is.
  store.reset();
  store = Store::open(dir.path(), small);
  CHECK(store->journal(j)->entryCount == 1 + committed.size());
  CHECK(store->head(j, owner.key())->id == committed.back().id);
  for (const Entry& e : failed) CHECK_FALSE(store->entryById(e.id).has_value());
  size_t checked = 0;
  while (checked < committed.size()) {
    auto range = store->range(j, owner.key(), 2 + checked, RANGE_LIMIT_MAX);
    REQUIRE(!range.empty());
    for (const Entry& e : range) CHECK(e.id == committed[checked++].id);
  }
  CHECK(checked == committed.size());

  // With a larger maximum the store takes the rest.
  store.reset();
  store = Store::open(dir.path(), StoreOptions{size_t{1} << 20, size_t{64} << 20});
  for (const auto& out : store->appendBatch(failed, &kr)) CHECK(out.status == AppendStatus::ADDED);
  CHECK(store->head(j, owner.key())->id == failed.back().id);
}

TEST_CASE("a store of another schema is refused", "[store]") {
  TempDir dir;
  Person owner("owner");
  {
    auto store = Store::open(dir.path());
    createJournal(*store, owner.keyring(), "schema");
  }
  auto pokeSchema = [&](const Bytes& value) {
    Env env(dir.path(), MAP_BYTES_INITIAL, TABLES_MAX);
    WriteTxn txn(env);
    Table meta(txn, "meta");
    auto current = meta.get(txn, asBytes("schema"));
    REQUIRE(current.has_value());
    meta.put(txn, asBytes("schema"), value);
    txn.commit();
  };
  {
    // The schema is a big-endian u32 under "schema" in the meta table.
    Env env(dir.path(), MAP_BYTES_INITIAL, TABLES_MAX);
    WriteTxn txn(env);
    Table meta(txn, "meta");
    auto current = meta.get(txn, asBytes("schema"));
    REQUIRE(current.has_value());
    REQUIRE(current->size() == 4);
    CHECK(getU32(current->data()) == SCHEMA_VERSION);
  }

  SECTION("newer") {
    Bytes v;
    putU32(v, SCHEMA_VERSION + 1);
    pokeSchema(v);
    Error err = errorOf([&] { Store::open(dir.path()); });
    CHECK(std::string(kindName(err.kind())) == "CORRUPT");
    CHECK_THAT(std::string(err.what()), Catch::Matchers::Contains("newer"));
    CHECK_THAT(err.hint(), Catch::Matchers::Contains("upgrade"));
  }
  SECTION("older") {
    // Schema 1 held entries of format 1, whose removals have no cut-off: refused, with what to do.
    Bytes v;
    putU32(v, SCHEMA_VERSION - 1);
    pokeSchema(v);
    Error err = errorOf([&] { Store::open(dir.path()); });
    CHECK(std::string(kindName(err.kind())) == "CORRUPT");
    CHECK_THAT(std::string(err.what()), Catch::Matchers::Contains("older"));
    CHECK_THAT(err.hint(), Catch::Matchers::Contains("new home"));
  }
  SECTION("unreadable") {
    pokeSchema(Bytes{1, 2});
    Error err = errorOf([&] { Store::open(dir.path()); });
    CHECK(std::string(kindName(err.kind())) == "CORRUPT");
  }
  SECTION("the same version opens") {
    Bytes v;
    putU32(v, SCHEMA_VERSION);
    pokeSchema(v);
    CHECK(Store::open(dir.path())->journals().size() == 1);
  }
}

}  // namespace
