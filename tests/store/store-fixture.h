// Helpers shared by the store's unit tests: people with their own identity and at-rest key,
// entries built and signed as their nodes would build them, and outcome names that print well.
// Random tests print their seed (as a Catch warning); KITH_TEST_SEED=<seed> replays one.
#pragma once
#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/clock.h"
#include "crypto/aead.h"
#include "crypto/keys.h"
#include "protocol/entry.h"
#include "store/journal.h"
#include "store/store.h"
#include "tests/support/errors.h"
#include "tests/support/seed.h"
#include "tests/support/temp-dir.h"

namespace kith::store::testing {

using protocol::Body;
using protocol::Control;
using protocol::EntryDraft;
using protocol::EntryError;
using protocol::KeyWrap;
using protocol::Kind;
using protocol::Rejection;
using protocol::Role;
using test::errorOf;
using test::kindName;
using test::TempDir;

using test::testSeed;

inline crypto::Identity makeIdentity(std::mt19937_64* rng) {
  if (rng == nullptr) return crypto::Identity::generate();
  Bytes seed(crypto::SEED_BYTES);
  for (auto& b : seed) b = static_cast<uint8_t>((*rng)());
  return crypto::Identity::fromSeed(seed);
}

// A person with their own node: an identity and the at-rest key its store seals epoch keys with.
struct Person {
  explicit Person(std::string n, std::mt19937_64* rng = nullptr)
      : name(std::move(n)), identity(makeIdentity(rng)), storageKey(identity.deriveKey("kithstor", 1)) {}
  Person(const Person&) = delete;
  Person& operator=(const Person&) = delete;

  Keyring keyring() const { return Keyring{identity, storageKey.view()}; }
  const PublicKey& key() const { return identity.publicKey(); }

  std::string name;
  crypto::Identity identity;
  crypto::SecretBuffer storageKey;
};

inline Bytes randomBytes(size_t n) {
  Bytes b(n);
  crypto::randomBytes(b);
  return b;
}

inline Key32 randomKey32() {
  Key32 k;
  crypto::randomBytes(k);
  return k;
}

inline Bytes copyOf(const crypto::SecretBuffer& s) { return Bytes(s.view().begin(), s.view().end()); }

inline Entry makeEntry(const Person& author, const JournalId& journal, uint64_t seq, const EntryId& prev,
                       int64_t timestampMs, uint32_t epoch, Control control, std::optional<Body> body,
                       ByteView epochKey) {
  EntryDraft d;
  d.journal = journal;
  d.seq = seq;
  d.prev = prev;
  d.timestampMs = timestampMs;
  d.epoch = epoch;
  d.control = std::move(control);
  d.body = std::move(body);
  std::optional<ByteView> key;
  if (d.body) key = epochKey;
  return protocol::signEntry(author.identity, d, key);
}

inline Entry makePost(const Person& author, const JournalId& journal, uint64_t seq, const EntryId& prev,
                      int64_t timestampMs, uint32_t epoch, const std::string& text, ByteView epochKey) {
  return makeEntry(author, journal, seq, prev, timestampMs, epoch, Control{}, Body{Kind::UPDATE, text, {}}, epochKey);
}

inline KeyWrap wrapTo(const PublicKey& member, uint32_t epoch, ByteView key) {
  auto box = crypto::toBoxPublicKey(member);
  REQUIRE(box.has_value());
  return KeyWrap{member, epoch, crypto::sealTo(*box, key)};
}

inline const char* statusName(AppendStatus s) {
  switch (s) {
    case AppendStatus::ADDED:
      return "ADDED";
    case AppendStatus::DUPLICATE:
      return "DUPLICATE";
    case AppendStatus::REJECTED:
      return "REJECTED";
  }
  return "?";
}

// "ADDED", "DUPLICATE" or the rejection's name: one string to compare and to print.
inline std::string outcomeName(AppendStatus s, Rejection r) {
  return s == AppendStatus::REJECTED ? std::string(protocol::rejectionName(r)) : statusName(s);
}

// A chain of `n` updates by `author` after `head`, each with a text of `textBytes`.
inline std::vector<Entry> chainOf(const Person& author, const JournalId& j, Head head, size_t n, size_t textBytes,
                                  ByteView key) {
  std::vector<Entry> out;
  EntryId prev = head.id;
  for (size_t i = 0; i < n; ++i) {
    std::string text = "entry " + std::to_string(head.seq + 1 + i) + " ";
    text.resize(textBytes, static_cast<char>('a' + i % 26));
    out.push_back(
        makePost(author, j, head.seq + 1 + i, prev, 1'700'000'000'000 + static_cast<int64_t>(i), 0, text, key));
    prev = out.back().id;
  }
  return out;
}

// One person's node: an identity, its at-rest key, and a store in a temporary directory.
struct Household {
  Household()
      : identity(crypto::Identity::generate()), storageKey(identity.deriveKey("kithstor", 1)),
        store(Store::open(dir.path())) {}
  Household(const Household&) = delete;
  Household& operator=(const Household&) = delete;

  Keyring keyring() const { return Keyring{identity, storageKey.view()}; }
  const PublicKey& key() const { return identity.publicKey(); }
  void reopen() {
    store.reset();
    store = Store::open(dir.path());
  }

  TempDir dir;
  crypto::Identity identity;
  crypto::SecretBuffer storageKey;
  std::unique_ptr<Store> store;
};

// Appends to `to` every entry of the journal that `from` holds, in timeline order, with `to`'s
// keyring (a member's node) or without one (a relay-like node). Entries that arrive before the one
// they follow are retried.
inline void replicate(const Household& from, Household& to, const JournalId& j, bool withKeyring) {
  std::vector<Entry> pending = from.store->timeline(j);
  Keyring kr = to.keyring();
  while (!pending.empty()) {
    auto outcomes = to.store->appendBatch(pending, withKeyring ? &kr : nullptr);
    std::vector<Entry> again;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (outcomes[i].status == AppendStatus::REJECTED) {
        INFO(outcomes[i].message);
        REQUIRE(outcomes[i].reason == Rejection::BROKEN_CHAIN);
        again.push_back(pending[i]);
      }
    }
    REQUIRE(again.size() < pending.size());
    pending = std::move(again);
  }
  REQUIRE(to.store->versionVector(j) == from.store->versionVector(j));
}

}  // namespace kith::store::testing
