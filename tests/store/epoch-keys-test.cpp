// Epoch keys at rest: sealed under the storage key, never in the clear on disk.
#include <catch2/catch.hpp>

#include "store/lmdb.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

TEST_CASE("putEpochKey seals the key under the storage key", "[store]") {
  TempDir dir;
  Person me("me"), other("other");
  auto store = Store::open(dir.path());
  JournalId j = randomKey32();
  Bytes key = randomBytes(crypto::AEAD_KEY_BYTES);
  store->putEpochKey(j, 3, key, me.storageKey.view());
  auto got = store->epochKey(j, 3, me.storageKey.view());
  REQUIRE(got.has_value());
  CHECK(copyOf(*got) == key);
  CHECK_FALSE(store->epochKey(j, 2, me.storageKey.view()).has_value());
  CHECK_FALSE(store->epochKey(randomKey32(), 3, me.storageKey.view()).has_value());
  Error err = errorOf([&] { store->epochKey(j, 3, other.storageKey.view()); });
  CHECK(std::string(kindName(err.kind())) == "CORRUPT");
  store.reset();
  CHECK_FALSE(test::anyFileContains(dir.path(), std::string(asChars(key))));
  // The journal id is stored in the clear (it is a key): the same search finds it.
  CHECK(test::anyFileContains(dir.path(), std::string(asChars(j))));
}

}  // namespace
