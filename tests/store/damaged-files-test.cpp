// Damaged or missing data files: an error, never a crash.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "store/lmdb.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

TEST_CASE("a garbage data.mdb is an error and not a crash", "[store]") {
  uint64_t seed = testSeed("store damaged files");
  WARN("seed " << seed << " (replay with KITH_TEST_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);
  for (size_t size : {100, 4096, 8192, 65536}) {
    TempDir dir;
    {
      std::ofstream out(dir / "data.mdb", std::ios::binary);
      for (size_t i = 0; i < size; ++i) out.put(static_cast<char>(rng()));
    }
    INFO("garbage of " << size << " bytes");
    Error err = errorOf([&] { Store::open(dir.path()); });
    CHECK((err.kind() == ErrorKind::CORRUPT || err.kind() == ErrorKind::IO));
  }
}

TEST_CASE("a truncated data.mdb is CORRUPT and not a crash", "[store]") {
  // LMDB maps the file and trusts its header: reading a page past the end of a short file faults
  // with SIGBUS. A partial copy or a restore onto a full disk leaves exactly such a file.
  TempDir dir;
  Person owner("owner");
  Keyring kr = owner.keyring();
  {
    auto store = Store::open(dir.path());
    JournalId j = createJournal(*store, kr, "truncated");
    Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));
    for (const auto& out : store->appendBatch(chainOf(owner, j, *store->head(j, owner.key()), 200, 2000, key), &kr)) {
      REQUIRE(out.status == AppendStatus::ADDED);
    }
  }
  std::string data = dir / "data.mdb";
  auto size = std::filesystem::file_size(data);
  REQUIRE(size > 64 * 1024);
  for (auto cut : {size / 2, size - 4096}) {
    INFO("cut to " << cut << " of " << size << " bytes");
    std::filesystem::resize_file(data, cut);
    Error err = errorOf([&] { Store::open(dir.path()); });
    CHECK(std::string(kindName(err.kind())) == "CORRUPT");
    CHECK_THAT(std::string(err.what()), Catch::Matchers::Contains("damaged"));
    CHECK_FALSE(err.hint().empty());
  }
}

TEST_CASE("a store directory that does not exist is an IO error", "[store]") {
  TempDir dir;
  Error err = errorOf([&] { Store::open(dir / "missing"); });
  CHECK(std::string(kindName(err.kind())) == "IO");
}

}  // namespace
