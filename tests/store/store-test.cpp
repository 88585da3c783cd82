// The store against a simple in-memory model under random operations; then appendBatch's
// per-entry outcomes, map growth, schema versions, damaged files, and two processes writing one
// store at once.
//
// Random tests print their seed (as a Catch warning); KITH_TEST_SEED=<seed> replays one.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <iostream>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "crypto/aead.h"
#include "crypto/keys.h"
#include "protocol/entry.h"
#include "store/journal.h"
#include "store/lmdb.h"
#include "store/store.h"
#include "tests/support/temp-dir.h"

namespace {

using namespace kith;
using namespace kith::store;
using protocol::Body;
using protocol::Control;
using protocol::EntryDraft;
using protocol::EntryError;
using protocol::KeyWrap;
using protocol::Kind;
using protocol::Rejection;
using protocol::Role;
using test::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers

// This run's seed: KITH_TEST_SEED when set (to replay a failure), else a fresh one.
uint64_t testSeed() {
  if (const char* s = std::getenv("KITH_TEST_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 0);
  }
  std::random_device rd;
  return (uint64_t{rd()} << 32) | rd();
}

crypto::Identity makeIdentity(std::mt19937_64* rng) {
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

Bytes randomBytes(size_t n) {
  Bytes b(n);
  crypto::randomBytes(b);
  return b;
}

Key32 randomKey32() {
  Key32 k;
  crypto::randomBytes(k);
  return k;
}

Bytes copyOf(const crypto::SecretBuffer& s) { return Bytes(s.view().begin(), s.view().end()); }

Entry makeEntry(const Person& author, const JournalId& journal, uint64_t seq, const EntryId& prev,
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

Entry makePost(const Person& author, const JournalId& journal, uint64_t seq, const EntryId& prev,
               int64_t timestampMs, uint32_t epoch, const std::string& text, ByteView epochKey) {
  return makeEntry(author, journal, seq, prev, timestampMs, epoch, Control{}, Body{Kind::UPDATE, text, {}},
                   epochKey);
}

KeyWrap wrapTo(const PublicKey& member, uint32_t epoch, ByteView key) {
  auto box = crypto::toBoxPublicKey(member);
  REQUIRE(box.has_value());
  return KeyWrap{member, epoch, crypto::sealTo(*box, key)};
}

// The error f() throws; fails the test when it throws none.
template <typename F>
Error errorOf(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected a kith::Error");
  throw std::logic_error("unreachable");
}

const char* kindName(ErrorKind k) {
  switch (k) {
    case ErrorKind::USAGE: return "USAGE";
    case ErrorKind::INPUT: return "INPUT";
    case ErrorKind::NOT_FOUND: return "NOT_FOUND";
    case ErrorKind::AUTH: return "AUTH";
    case ErrorKind::CORRUPT: return "CORRUPT";
    case ErrorKind::CONFLICT: return "CONFLICT";
    case ErrorKind::IO: return "IO";
  }
  return "?";
}

const char* statusName(AppendStatus s) {
  switch (s) {
    case AppendStatus::ADDED: return "ADDED";
    case AppendStatus::DUPLICATE: return "DUPLICATE";
    case AppendStatus::REJECTED: return "REJECTED";
  }
  return "?";
}

// "ADDED", "DUPLICATE" or the rejection's name: one string to compare and to print.
std::string outcomeName(AppendStatus s, Rejection r) {
  return s == AppendStatus::REJECTED ? std::string(protocol::rejectionName(r)) : statusName(s);
}

// ---------------------------------------------------------------------------------------------
// The model test

struct ModelMember {
  Role role = Role::SUBSCRIBER;
  bool active = true;
  uint32_t sinceEpoch = 0;
};

struct ModelJournal {
  JournalId id{};
  PublicKey owner{};
  uint32_t epoch = 0;
  int64_t createdMs = 0;
  int64_t lastEntryMs = 0;
  uint64_t entryCount = 0;
  std::map<PublicKey, ModelMember> members;
  std::map<PublicKey, std::vector<Entry>> chains;  // author -> entries, seq 1 first
  std::map<uint32_t, Bytes> keys;                  // every epoch key, as the test knows it
  std::set<uint32_t> held;                         // epochs whose key the node's store holds
  std::set<Bytes> forks;                           // packed fork evidence

  bool isActive(const PublicKey& k) const {
    auto it = members.find(k);
    return it != members.end() && it->second.active;
  }
};

struct NewKey {
  uint32_t epoch;
  Bytes key;
};

// One node's store (the node of people_[0], who owns journal one) taking in entries from every
// author, compared after every step with what the model says it should hold.
class StoreModel {
public:
  explicit StoreModel(uint64_t seed) : rng_(seed) {
    for (const char* name : {"owner", "coauthor", "subscriber", "friend", "outsider"}) {
      people_.push_back(std::make_unique<Person>(name, &rng_));
    }
    store_ = Store::open(dir_.path());
  }

  void run(int steps) {
    setup();
    check(true);
    struct Op {
      const char* name;
      unsigned weight;
      void (StoreModel::*fn)();
    };
    const Op ops[] = {
        {"member posts", 22, &StoreModel::opPost},
        {"member posts under a wrong key", 3, &StoreModel::opWrongBodyKey},
        {"node posts with post()", 8, &StoreModel::opPostApi},
        {"owner adds a member", 8, &StoreModel::opAddMember},
        {"owner removes a member", 6, &StoreModel::opRemoveMember},
        {"non-owner adds a member", 5, &StoreModel::opNonOwnerAdds},
        {"duplicate", 7, &StoreModel::opDuplicate},
        {"fork", 7, &StoreModel::opFork},
        {"gap", 5, &StoreModel::opGap},
        {"bad prev", 5, &StoreModel::opBadPrev},
        {"outsider posts", 5, &StoreModel::opOutsiderPosts},
        {"unknown journal", 5, &StoreModel::opUnknownJournal},
        {"bad epoch", 4, &StoreModel::opBadEpoch},
        {"reopen", 3, &StoreModel::opReopen},
    };
    unsigned total = 0;
    for (const Op& op : ops) total += op.weight;
    for (int step = 0; step < steps; ++step) {
      unsigned r = static_cast<unsigned>(rng_() % total);
      const Op* op = ops;
      while (r >= op->weight) r -= (op++)->weight;
      INFO("step " << step << ": " << op->name);
      (this->*op->fn)();
      check(step % 25 == 24);
    }
    opReopen();
    check(true);

    // The random walk reached every outcome the store distinguishes here.
    for (const char* outcome : {"ADDED", "DUPLICATE", "fork", "broken-chain", "unauthorised",
                                "unknown-journal", "bad-epoch"}) {
      INFO("outcome " << outcome);
      CHECK(outcomes_[outcome] > 0);
    }
    CHECK(reopens_ > 0);
    std::string summary;
    for (const auto& [name, n] : outcomes_) summary += " " + name + "=" + std::to_string(n);
    WARN("model test outcomes:" << summary << " reopens=" << reopens_);
  }

private:
  // -- The model's rules: what the store must say about an entry, given what it holds.

  struct Expected {
    AppendStatus status = AppendStatus::ADDED;
    Rejection reason = Rejection::MALFORMED;
    std::string name() const { return outcomeName(status, reason); }
  };
  static Expected refused(Rejection r) { return {AppendStatus::REJECTED, r}; }

  Expected predict(const Entry& e) const {
    auto jt = model_.find(e.journal);
    const ModelJournal* j = jt == model_.end() ? nullptr : &jt->second;
    const std::vector<Entry>* chain = nullptr;
    if (j != nullptr) {
      auto ct = j->chains.find(e.author);
      if (ct != j->chains.end()) chain = &ct->second;
    }
    uint64_t head = chain != nullptr ? chain->size() : 0;
    if (e.seq <= head && (*chain)[e.seq - 1].id == e.id) return {AppendStatus::DUPLICATE};
    if (e.seq <= head) return refused(Rejection::FORK);
    if (e.seq != head + 1) return refused(Rejection::BROKEN_CHAIN);
    if (e.prev != (head > 0 ? chain->back().id : EntryId{})) return refused(Rejection::BROKEN_CHAIN);
    const Control& c = e.control;
    if (j == nullptr) return c.type == Control::Type::CREATE ? Expected{} : refused(Rejection::UNKNOWN_JOURNAL);

    auto author = j->members.find(e.author);
    if (author == j->members.end() || !author->second.active) return refused(Rejection::UNAUTHORISED);
    if (author->second.role == Role::RELAY) return refused(Rejection::UNAUTHORISED);
    if (e.epoch > j->epoch + (c.type == Control::Type::REMOVE_MEMBER ? 1 : 0)) return refused(Rejection::BAD_EPOCH);
    // A node that holds the epoch's key also checks the kind inside the body against the role.
    if (!e.body.empty() && j->held.count(e.epoch)) {
      auto body = protocol::openBody(e, j->keys.at(e.epoch));
      if (!body) return refused(Rejection::MALFORMED);
      Role role = author->second.role;
      if (body->kind == Kind::JOURNAL_INFO && role != Role::OWNER) return refused(Rejection::UNAUTHORISED);
      if (body->kind == Kind::UPDATE && role != Role::OWNER && role != Role::COAUTHOR) {
        return refused(Rejection::UNAUTHORISED);
      }
      if ((body->kind == Kind::COMMENT || body->kind == Kind::HEART) && body->refs.empty()) {
        return refused(Rejection::MALFORMED);
      }
    }
    switch (c.type) {
      case Control::Type::NONE:
        if (e.body.empty()) return refused(Rejection::MALFORMED);
        break;
      case Control::Type::CREATE:
        return refused(Rejection::BAD_GENESIS);
      case Control::Type::ADD_MEMBER:
        if (author->second.role != Role::OWNER) return refused(Rejection::UNAUTHORISED);
        if (c.role == Role::OWNER) return refused(Rejection::UNAUTHORISED);
        if (j->isActive(c.member)) return refused(Rejection::UNAUTHORISED);
        for (const KeyWrap& w : c.wraps) {
          if (w.member != c.member || w.epoch > j->epoch || c.role == Role::RELAY) return refused(Rejection::MALFORMED);
        }
        break;
      case Control::Type::REMOVE_MEMBER: {
        if (author->second.role != Role::OWNER) return refused(Rejection::UNAUTHORISED);
        auto target = j->members.find(c.member);
        if (target == j->members.end() || !target->second.active || target->second.role == Role::OWNER) {
          return refused(Rejection::UNAUTHORISED);
        }
        if (c.newEpoch != j->epoch + 1 || e.epoch != c.newEpoch) return refused(Rejection::BAD_EPOCH);
        for (const KeyWrap& w : c.wraps) {
          auto m = j->members.find(w.member);
          if (w.epoch != c.newEpoch || w.member == c.member || m == j->members.end() || !m->second.active ||
              m->second.role == Role::RELAY) {
            return refused(Rejection::MALFORMED);
          }
        }
        break;
      }
    }
    return {};
  }

  // Records an entry the store took in.
  void apply(const Entry& e) {
    const Control& c = e.control;
    if (c.type == Control::Type::CREATE && !model_.count(e.journal)) {
      ModelJournal j;
      j.id = e.journal;
      j.owner = e.author;
      j.createdMs = e.timestampMs;
      j.lastEntryMs = e.timestampMs;
      j.members[e.author] = ModelMember{Role::OWNER, true, 0};
      model_[e.journal] = std::move(j);
    }
    ModelJournal& j = model_.at(e.journal);
    j.chains[e.author].push_back(e);
    j.entryCount++;
    j.lastEntryMs = std::max(j.lastEntryMs, e.timestampMs);
    if (c.type == Control::Type::ADD_MEMBER) {
      j.members[c.member] = ModelMember{c.role, true, j.epoch};
    } else if (c.type == Control::Type::REMOVE_MEMBER) {
      j.members.at(c.member).active = false;
      j.epoch = c.newEpoch;
    }
    for (const KeyWrap& w : c.wraps) {
      if (w.member == node().key()) j.held.insert(w.epoch);
    }
  }

  // Appends an entry built here (through append() or a one-entry appendBatch, at random) and
  // checks the outcome against the model's prediction.
  void submit(const Entry& e, const std::optional<NewKey>& newKey = std::nullopt) {
    Expected want = predict(e);
    Keyring kr = node().keyring();
    size_t changeBefore = store_->changeCounter();
    AppendOutcome got;
    if (rng_() % 2 == 0) {
      try {
        got.status = store_->append(e, &kr);
      } catch (const EntryError& err) {
        got = {AppendStatus::REJECTED, err.reason(), err.what()};
      }
    } else {
      auto outs = store_->appendBatch({e}, &kr);
      REQUIRE(outs.size() == 1);
      got = outs[0];
    }
    INFO("store said: " << got.message);
    REQUIRE(outcomeName(got.status, got.reason) == want.name());
    outcomes_[want.name()]++;
    if (got.status == AppendStatus::REJECTED) CHECK_FALSE(got.message.empty());

    if (got.status == AppendStatus::ADDED) {
      apply(e);
      if (newKey) model_.at(e.journal).keys[newKey->epoch] = newKey->key;
      auto stored = store_->entry(e.journal, e.author, e.seq);
      REQUIRE(stored.has_value());
      CHECK(stored->id == e.id);
      CHECK(stored->bytes == e.bytes);
      auto byId = store_->entryById(e.id);
      REQUIRE(byId.has_value());
      CHECK(byId->seq == e.seq);
    } else if (got.status == AppendStatus::REJECTED && got.reason == Rejection::FORK) {
      model_.at(e.journal).forks.insert(protocol::packEntry(e));
    } else {
      // Refused (not a fork) or a duplicate: nothing at all was written.
      CHECK(store_->changeCounter() == changeBefore);
    }
  }

  // An entry made by journal.h (already in the store): the model must agree it was valid.
  void took(const Entry& e) {
    Expected want = predict(e);
    REQUIRE(want.name() == "ADDED");
    outcomes_["ADDED"]++;
    apply(e);
  }

  // A journal.h call that must fail with `kind` and change nothing.
  template <typename F>
  void refusedCall(ErrorKind kind, F&& f) {
    size_t changeBefore = store_->changeCounter();
    Error err = errorOf(std::forward<F>(f));
    INFO("error: " << err.what());
    CHECK(std::string(kindName(err.kind())) == kindName(kind));
    CHECK(store_->changeCounter() == changeBefore);
    outcomes_[std::string("api:") + kindName(kind)]++;
  }

  // -- The operations.

  Person& node() { return *people_[0]; }
  const Person& node() const { return *people_[0]; }
  Person& outsider() { return *people_[4]; }
  Person& person(const PublicKey& k) {
    for (auto& p : people_) {
      if (p->key() == k) return *p;
    }
    FAIL("unknown key");
    throw std::logic_error("unreachable");
  }
  Person& randomPerson() { return *people_[rng_() % people_.size()]; }
  ModelJournal& randomJournal() {
    auto it = model_.begin();
    std::advance(it, static_cast<long>(rng_() % model_.size()));
    return it->second;
  }
  // People the owner may add or remove: never the outsider, never the journal's owner.
  Person& randomCandidate(const ModelJournal& j) {
    for (;;) {
      Person& p = *people_[rng_() % 4];
      if (p.key() != j.owner) return p;
    }
  }
  // Timestamps collide often (the timeline then orders by id) and are sometimes negative.
  int64_t timestamp() {
    if (rng_() % 10 == 0) return -static_cast<int64_t>(rng_() % 1000);
    return 1'700'000'000'000 + static_cast<int64_t>(rng_() % 200);
  }
  std::string text(const Person& author) { return "entry " + std::to_string(++textCounter_) + " by " + author.name; }

  std::pair<uint64_t, EntryId> next(const ModelJournal& j, const Person& author) const {
    auto it = j.chains.find(author.key());
    if (it == j.chains.end() || it->second.empty()) return {1, EntryId{}};
    return {it->second.size() + 1, it->second.back().id};
  }

  Bytes keyFor(const ModelJournal& j, uint32_t epoch) const {
    auto it = j.keys.find(epoch);
    return it != j.keys.end() ? it->second : randomBytes(crypto::AEAD_KEY_BYTES);
  }

  std::vector<Entry*> allEntries() {
    std::vector<Entry*> out;
    for (auto& [id, j] : model_) {
      for (auto& [author, chain] : j.chains) {
        for (Entry& e : chain) out.push_back(&e);
      }
    }
    return out;
  }

  // A body of a random kind; comments and hearts mostly refer to an entry, as they must.
  Body randomBody(const Person& author) {
    Body body{static_cast<Kind>(rng_() % 3), text(author), {}};
    if (rng_() % 20 == 0) body.kind = Kind::JOURNAL_INFO;
    bool answer = body.kind == Kind::COMMENT || body.kind == Kind::HEART;
    if (answer ? rng_() % 6 != 0 : rng_() % 4 == 0) {
      auto all = allEntries();
      body.refs.push_back(all[rng_() % all.size()]->id);
    }
    return body;
  }

  void postAs(Person& author, ModelJournal& j, bool wrongKey = false) {
    auto [seq, prev] = next(j, author);
    uint32_t epoch = j.epoch;
    if (j.epoch > 0 && rng_() % 5 == 0) epoch = static_cast<uint32_t>(rng_() % (j.epoch + 1));  // an older epoch
    Body body = randomBody(author);
    Bytes key = wrongKey ? randomBytes(crypto::AEAD_KEY_BYTES) : keyFor(j, epoch);
    Entry e = makeEntry(author, j.id, seq, prev, timestamp(), epoch, Control{}, body, key);
    texts_[e.id] = body.text;
    if (wrongKey) garbled_.insert(e.id);
    submit(e);
  }

  std::vector<Person*> activeAuthors(const ModelJournal& j) {
    std::vector<Person*> out;
    for (auto& p : people_) {
      if (j.isActive(p->key()) && j.members.at(p->key()).role != Role::RELAY) out.push_back(p.get());
    }
    return out;
  }

  void opPost() {
    ModelJournal& j = randomJournal();
    // Mostly active members, so that chains grow; anyone else now and then.
    auto members = activeAuthors(j);
    Person& author = (members.empty() || rng_() % 4 == 0) ? randomPerson() : *members[rng_() % members.size()];
    postAs(author, j);
  }

  // A member's body that does not open under the epoch's key: refused where the key is held,
  // kept (and unreadable) where it is not.
  void opWrongBodyKey() {
    ModelJournal& j = randomJournal();
    auto members = activeAuthors(j);
    postAs(*members[rng_() % members.size()], j, /*wrongKey=*/true);
  }

  void opOutsiderPosts() { postAs(outsider(), randomJournal()); }

  void opPostApi() {
    ModelJournal& j = randomJournal();
    Kind kind = static_cast<Kind>(rng_() % 3);
    Body body{kind, text(node()), {}};
    if (kind != Kind::UPDATE) {
      auto all = allEntries();
      body.refs.push_back(all[rng_() % all.size()]->id);
    }
    Keyring kr = node().keyring();
    auto m = j.members.find(node().key());
    bool allowed = false;
    if (m != j.members.end() && m->second.active) {
      Role r = m->second.role;
      allowed = r == Role::OWNER || r == Role::COAUTHOR || (kind != Kind::UPDATE && r == Role::SUBSCRIBER);
    }
    if (!allowed) {
      refusedCall(ErrorKind::AUTH, [&] { post(*store_, kr, j.id, body); });
      return;
    }
    REQUIRE(j.held.count(j.epoch));  // a member that may post always holds the current key
    Entry e = post(*store_, kr, j.id, body);
    CHECK(e.epoch == j.epoch);
    texts_[e.id] = body.text;
    took(e);
  }

  void opAddMember() {
    ModelJournal& j = randomJournal();
    Person& target = randomCandidate(j);
    Role role = std::array{Role::SUBSCRIBER, Role::COAUTHOR, Role::RELAY}[rng_() % 3];
    bool api = j.owner == node().key() ? rng_() % 2 == 0 : rng_() % 5 == 0;
    if (api) {
      Keyring kr = node().keyring();
      if (j.owner != node().key()) {
        refusedCall(ErrorKind::AUTH, [&] { addMember(*store_, kr, j.id, target.key(), role); });
      } else if (j.isActive(target.key())) {
        refusedCall(ErrorKind::CONFLICT, [&] { addMember(*store_, kr, j.id, target.key(), role); });
      } else {
        Entry e = addMember(*store_, kr, j.id, target.key(), role);
        // Every epoch's key is wrapped to the new member, except to a relay.
        CHECK(e.control.wraps.size() == (role == Role::RELAY ? 0 : j.epoch + 1));
        took(e);
      }
      return;
    }
    Person& owner = person(j.owner);
    Control c;
    c.type = Control::Type::ADD_MEMBER;
    c.member = target.key();
    c.role = role;
    if (role != Role::RELAY) {
      for (uint32_t e = 0; e <= j.epoch; ++e) c.wraps.push_back(wrapTo(target.key(), e, j.keys.at(e)));
    }
    switch (rng_() % 8) {
      case 0: c.role = Role::OWNER; break;                                                 // a second owner
      case 1: c.role = Role::RELAY; c.wraps = {wrapTo(target.key(), 0, j.keys.at(0))}; break;  // keys to a relay
      case 2: c.wraps.push_back(wrapTo(target.key(), j.epoch + 1, randomBytes(32))); break;    // a future epoch
      default: break;
    }
    auto [seq, prev] = next(j, owner);
    submit(makeEntry(owner, j.id, seq, prev, timestamp(), j.epoch, c, std::nullopt, {}));
  }

  void opRemoveMember() {
    ModelJournal& j = randomJournal();
    Person& target = rng_() % 10 == 0 ? person(j.owner) : randomCandidate(j);
    bool api = j.owner == node().key() ? rng_() % 2 == 0 : rng_() % 5 == 0;
    if (api) {
      Keyring kr = node().keyring();
      auto call = [&] { removeMember(*store_, kr, j.id, target.key()); };
      if (j.owner != node().key()) {
        refusedCall(ErrorKind::AUTH, call);
      } else if (!j.isActive(target.key())) {
        refusedCall(ErrorKind::NOT_FOUND, call);
      } else if (target.key() == j.owner) {
        refusedCall(ErrorKind::INPUT, call);
      } else {
        Entry e = removeMember(*store_, kr, j.id, target.key());
        // The new key goes to every remaining member but relays, and not to the removed one.
        std::set<PublicKey> wrapped, remaining;
        for (const KeyWrap& w : e.control.wraps) wrapped.insert(w.member);
        for (const auto& [k, m] : j.members) {
          if (m.active && k != target.key() && m.role != Role::RELAY) remaining.insert(k);
        }
        CHECK(wrapped == remaining);
        took(e);
        auto key = store_->epochKey(j.id, j.epoch, node().storageKey.view());
        REQUIRE(key.has_value());
        j.keys[j.epoch] = copyOf(*key);
      }
      return;
    }
    Person& owner = person(j.owner);
    Control c;
    c.type = Control::Type::REMOVE_MEMBER;
    c.member = target.key();
    c.newEpoch = j.epoch + 1;
    Bytes newKey = randomBytes(crypto::AEAD_KEY_BYTES);
    for (const auto& [k, m] : j.members) {
      if (m.active && k != target.key() && m.role != Role::RELAY) c.wraps.push_back(wrapTo(k, c.newEpoch, newKey));
    }
    switch (rng_() % 8) {
      case 0: c.newEpoch = j.epoch + 2; break;                                                // skips an epoch
      case 1: c.wraps.push_back(wrapTo(target.key(), c.newEpoch, newKey)); break;            // keys to the removed
      default: break;
    }
    auto [seq, prev] = next(j, owner);
    submit(makeEntry(owner, j.id, seq, prev, timestamp(), c.newEpoch, c, std::nullopt, {}),
           NewKey{c.newEpoch, newKey});
  }

  void opNonOwnerAdds() {
    ModelJournal& j = randomJournal();
    std::vector<Person*> authors;
    for (auto& p : people_) {
      if (j.isActive(p->key()) && p->key() != j.owner) authors.push_back(p.get());
    }
    if (authors.empty()) return opOutsiderPosts();
    Person& author = *authors[rng_() % authors.size()];
    Control c;
    c.type = Control::Type::ADD_MEMBER;
    c.member = randomPerson().key();
    c.role = Role::SUBSCRIBER;
    auto [seq, prev] = next(j, author);
    submit(makeEntry(author, j.id, seq, prev, timestamp(), j.epoch, c, std::nullopt, {}));
  }

  void opDuplicate() {
    auto all = allEntries();
    submit(*all[rng_() % all.size()]);
  }

  void opFork() {
    auto all = allEntries();
    const Entry& original = *all[rng_() % all.size()];
    Body body{Kind::COMMENT, "fork " + std::to_string(++textCounter_), {}};
    Entry forged = makeEntry(person(original.author), original.journal, original.seq, original.prev,
                             original.timestampMs + 1, original.epoch, Control{}, body, randomBytes(32));
    REQUIRE(forged.id != original.id);
    submit(forged);
  }

  void opGap() {
    ModelJournal& j = randomJournal();
    Person& author = randomPerson();
    auto [seq, prev] = next(j, author);
    submit(makePost(author, j.id, seq + 1, prev, timestamp(), j.epoch, text(author), keyFor(j, j.epoch)));
  }

  void opBadPrev() {
    ModelJournal& j = randomJournal();
    Person& author = randomPerson();
    auto [seq, prev] = next(j, author);
    submit(makePost(author, j.id, seq, randomKey32(), timestamp(), j.epoch, text(author), keyFor(j, j.epoch)));
  }

  void opUnknownJournal() {
    JournalId unknown = randomKey32();
    Person& author = randomPerson();
    if (rng_() % 2 == 0) {
      submit(makePost(author, unknown, 1, EntryId{}, timestamp(), 0, text(author), randomBytes(32)));
    } else {
      Control c;
      c.type = Control::Type::ADD_MEMBER;
      c.member = randomPerson().key();
      submit(makeEntry(author, unknown, 1, EntryId{}, timestamp(), 0, c, std::nullopt, {}));
    }
    Keyring kr = node().keyring();
    refusedCall(ErrorKind::NOT_FOUND, [&] { post(*store_, kr, unknown, Body{Kind::UPDATE, "nowhere", {}}); });
    CHECK_FALSE(store_->journal(unknown).has_value());
    CHECK(store_->versionVector(unknown).empty());
    CHECK(store_->timeline(unknown).empty());
  }

  void opBadEpoch() {
    ModelJournal& j = randomJournal();
    auto authors = activeAuthors(j);
    Person& author = *authors[rng_() % authors.size()];  // the owner is always there
    auto [seq, prev] = next(j, author);
    uint32_t epoch = j.epoch + 1 + static_cast<uint32_t>(rng_() % 3);
    submit(makePost(author, j.id, seq, prev, timestamp(), epoch, text(author), randomBytes(32)));
  }

  void opReopen() {
    store_.reset();
    store_ = Store::open(dir_.path());
    reopens_++;
  }

  // -- Setup and comparison.

  void setup() {
    Keyring kr = node().keyring();
    JournalId one = createJournal(*store_, kr, "Journal one");
    auto genesis = store_->entry(one, node().key(), 1);
    REQUIRE(genesis.has_value());
    texts_[genesis->id] = "Journal one";
    took(*genesis);
    auto key0 = store_->epochKey(one, 0, kr.storageKey);
    REQUIRE(key0.has_value());
    model_.at(one).keys[0] = copyOf(*key0);

    // Journal two is the coauthor's, created on their node and replicated here: this node is
    // not in it (yet), so it holds none of its keys; the test knows them all.
    Person& coauthor = *people_[1];
    Control c;
    c.type = Control::Type::CREATE;
    c.salt = randomBytes(protocol::JOURNAL_SALT_BYTES);
    Bytes key = randomBytes(crypto::AEAD_KEY_BYTES);
    c.wraps.push_back(wrapTo(coauthor.key(), 0, key));
    JournalId two = protocol::journalIdFor(coauthor.key(), c.salt);
    Entry create = makeEntry(coauthor, two, 1, EntryId{}, timestamp(), 0, c,
                             Body{Kind::JOURNAL_INFO, "Journal two", {}}, key);
    texts_[create.id] = "Journal two";
    submit(create, NewKey{0, key});
    REQUIRE(model_.count(two));

    took(addMember(*store_, kr, one, people_[1]->key(), Role::COAUTHOR));
    took(addMember(*store_, kr, one, people_[2]->key(), Role::SUBSCRIBER));
  }

  void check(bool full) {
    auto journals = store_->journals();
    REQUIRE(journals.size() == model_.size());
    for (const auto& info : journals) REQUIRE(model_.count(info.id));
    Bytes storageKey(node().storageKey.view().begin(), node().storageKey.view().end());

    for (const auto& [id, j] : model_) {
      INFO("journal " << toHex(id).substr(0, 8));
      auto info = store_->journal(id);
      REQUIRE(info.has_value());
      CHECK(info->owner == j.owner);
      CHECK(info->epoch == j.epoch);
      CHECK(info->createdMs == j.createdMs);
      CHECK(info->lastEntryMs == j.lastEntryMs);
      CHECK(info->entryCount == j.entryCount);

      VersionVector want;
      for (const auto& [author, chain] : j.chains) want[author] = chain.size();
      CHECK(store_->versionVector(id) == want);
      for (const auto& p : people_) {
        auto head = store_->head(id, p->key());
        auto chain = j.chains.find(p->key());
        if (chain == j.chains.end()) {
          CHECK_FALSE(head.has_value());
        } else {
          REQUIRE(head.has_value());
          CHECK(head->seq == chain->second.size());
          CHECK(head->id == chain->second.back().id);
        }
      }

      std::map<PublicKey, std::tuple<Role, bool, uint32_t>> members, wantMembers;
      for (const Member& m : store_->members(id)) members[m.key] = {m.role, m.active, m.sinceEpoch};
      for (const auto& [k, m] : j.members) wantMembers[k] = {m.role, m.active, m.sinceEpoch};
      CHECK(members == wantMembers);
      for (const auto& p : people_) {
        auto m = store_->member(id, p->key());
        bool known = j.members.count(p->key()) > 0;
        CHECK(m.has_value() == known);
      }

      auto forks = store_->forks(id);
      CHECK(std::set<Bytes>(forks.begin(), forks.end()) == j.forks);
      CHECK(forks.size() == j.forks.size());

      for (uint32_t e = 0; e <= j.epoch + 1; ++e) {
        auto key = store_->epochKey(id, e, storageKey);
        INFO("epoch " << e);
        if (j.held.count(e)) {
          REQUIRE(key.has_value());
          CHECK(copyOf(*key) == j.keys.at(e));
        } else {
          CHECK_FALSE(key.has_value());
        }
      }
      if (full) checkEntries(j);
    }
  }

  // Every entry by (author, seq), by id, by range, in the timeline, and decrypted.
  void checkEntries(const ModelJournal& j) {
    std::vector<std::pair<int64_t, EntryId>> order;
    for (const auto& [author, chain] : j.chains) {
      auto range = store_->range(j.id, author, 1, RANGE_LIMIT_MAX);
      REQUIRE(range.size() == chain.size());
      for (size_t i = 0; i < chain.size(); ++i) {
        CHECK(range[i].id == chain[i].id);
        auto e = store_->entry(j.id, author, i + 1);
        REQUIRE(e.has_value());
        CHECK(e->id == chain[i].id);
        order.emplace_back(chain[i].timestampMs, chain[i].id);
      }
      CHECK_FALSE(store_->entry(j.id, author, chain.size() + 1).has_value());
      // From a seq in the middle.
      size_t from = 1 + rng_() % chain.size();
      auto tail = store_->range(j.id, author, from, RANGE_LIMIT_MAX);
      REQUIRE(tail.size() == chain.size() - from + 1);
      CHECK(tail.front().id == chain[from - 1].id);
    }
    std::sort(order.begin(), order.end());
    auto timeline = store_->timeline(j.id);
    REQUIRE(timeline.size() == order.size());
    for (size_t i = 0; i < order.size(); ++i) CHECK(timeline[i].id == order[i].second);

    // An id found by a prefix of its hex.
    const EntryId& some = order[rng_() % order.size()].second;
    auto found = store_->findEntries(toHex(some).substr(0, 7), 100);
    CHECK(std::find(found.begin(), found.end(), some) != found.end());

    auto read = readJournal(*store_, node().keyring(), j.id);
    REQUIRE(read.size() == order.size());
    for (const ReadEntry& r : read) {
      if (r.entry.body.empty() || !j.held.count(r.entry.epoch) || garbled_.count(r.entry.id)) {
        CHECK_FALSE(r.body.has_value());
      } else {
        REQUIRE(r.body.has_value());
        CHECK(r.body->text == texts_.at(r.entry.id));
      }
    }
  }

  TempDir dir_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Person>> people_;
  std::unique_ptr<Store> store_;
  std::map<JournalId, ModelJournal> model_;
  std::map<EntryId, std::string> texts_;
  std::set<EntryId> garbled_;  // bodies sealed under a wrong key
  std::map<std::string, int> outcomes_;
  int reopens_ = 0;
  int textCounter_ = 0;
};

TEST_CASE("the store matches an in-memory model under random operations", "[store]") {
  uint64_t seed = testSeed();
  WARN("seed " << seed << " (replay with KITH_TEST_SEED=" << seed << ")");
  StoreModel model(seed);
  model.run(400);
}

// ---------------------------------------------------------------------------------------------
// appendBatch

TEST_CASE("appendBatch gives each entry its own outcome and keeps the good ones", "[store]") {
  TempDir dir;
  Person owner("owner"), subscriber("subscriber"), outsider("outsider"), coauthor("coauthor");
  auto store = Store::open(dir.path());
  Keyring kr = owner.keyring();
  JournalId j = createJournal(*store, kr, "batch");
  Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));
  Entry genesis = *store->entry(j, owner.key(), 1);
  int64_t t = genesis.timestampMs;

  Control addSub;
  addSub.type = Control::Type::ADD_MEMBER;
  addSub.member = subscriber.key();
  addSub.wraps = {wrapTo(subscriber.key(), 0, key)};
  Control addOwner;
  addOwner.type = Control::Type::ADD_MEMBER;
  addOwner.member = coauthor.key();
  addOwner.role = Role::OWNER;

  std::vector<Entry> batch;
  batch.push_back(makePost(owner, j, 2, genesis.id, t + 1, 0, "owner 2", key));             // 0 added
  batch.push_back(makePost(outsider, j, 1, {}, t + 2, 0, "outsider 1", key));                // 1 unauthorised
  batch.push_back(makePost(outsider, j, 2, batch[1].id, t + 3, 0, "outsider 2", key));       // 2 after a refused one
  batch.push_back(makeEntry(owner, j, 3, batch[0].id, t + 4, 0, addSub, std::nullopt, {}));  // 3 added
  batch.push_back(makeEntry(subscriber, j, 1, {}, t + 5, 0, Control{},                      // 4 member since 3
                            Body{Kind::COMMENT, "subscriber 1", {batch[0].id}}, key));
  batch.push_back(batch[0]);                                                                  // 5 duplicate
  batch.push_back(makeEntry(owner, j, 4, batch[3].id, t + 6, 0, addOwner, std::nullopt, {}));// 6 second owner
  batch.push_back(makePost(owner, j, 5, batch[6].id, t + 7, 0, "after refused", key));       // 7 after a refused one
  batch.push_back(makePost(owner, j, 4, batch[3].id, t + 8, 0, "owner 4", key));             // 8 chain goes on
  batch.push_back(makePost(owner, j, 2, genesis.id, t + 9, 0, "forged 2", key));             // 9 fork
  batch.push_back(makePost(owner, randomKey32(), 1, {}, t + 10, 0, "elsewhere", key));        // 10 unknown journal
  batch.push_back(makePost(subscriber, j, 3, batch[4].id, t + 11, 0, "gap", key));           // 11 gap
  batch.push_back(makePost(subscriber, j, 2, batch[4].id, t + 12, 1, "epoch 1", key));       // 12 bad epoch

  const std::vector<std::string> want = {"ADDED",        "unauthorised", "broken-chain",    "ADDED",
                                         "ADDED",        "DUPLICATE",    "unauthorised",    "broken-chain",
                                         "ADDED",        "fork",         "unknown-journal", "broken-chain",
                                         "bad-epoch"};
  auto outcomes = store->appendBatch(batch, &kr);
  REQUIRE(outcomes.size() == batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    INFO("entry " << i << ": " << outcomes[i].message);
    CHECK(outcomeName(outcomes[i].status, outcomes[i].reason) == want[i]);
    CHECK(outcomes[i].message.empty() == (outcomes[i].status != AppendStatus::REJECTED));
  }

  // The good ones are stored, the refused ones are not.
  for (size_t i : {0, 3, 8}) CHECK(store->entry(j, owner.key(), batch[i].seq)->id == batch[i].id);
  CHECK(store->entry(j, subscriber.key(), 1)->id == batch[4].id);
  for (size_t i : {1, 2, 6, 7, 9, 10, 11, 12}) CHECK_FALSE(store->entryById(batch[i].id).has_value());
  CHECK(store->versionVector(j) == VersionVector{{owner.key(), 4}, {subscriber.key(), 1}});
  CHECK(store->journal(j)->entryCount == 5);
  CHECK(store->journal(j)->lastEntryMs == t + 8);
  CHECK(store->member(j, subscriber.key())->active);
  CHECK_FALSE(store->member(j, coauthor.key()).has_value());
  CHECK_FALSE(store->member(j, outsider.key()).has_value());
  REQUIRE(store->forks(j).size() == 1);
  CHECK(store->forks(j)[0] == protocol::packEntry(batch[9]));
  CHECK(store->timeline(j).size() == 5);

  SECTION("a batch whose entries all fail writes nothing") {
    size_t before = store->changeCounter();
    auto out = store->appendBatch({batch[1], batch[2], batch[5], batch[10]}, &kr);
    CHECK(outcomeName(out[0].status, out[0].reason) == "unauthorised");
    CHECK(outcomeName(out[2].status, out[2].reason) == "DUPLICATE");
    CHECK(store->changeCounter() == before);
  }
  SECTION("entries out of order are taken in the order given") {
    Entry five = makePost(owner, j, 5, batch[8].id, t + 20, 0, "five", key);
    Entry six = makePost(owner, j, 6, five.id, t + 21, 0, "six", key);
    auto out = store->appendBatch({six, five}, &kr);
    CHECK(outcomeName(out[0].status, out[0].reason) == "broken-chain");
    CHECK(out[1].status == AppendStatus::ADDED);
    CHECK(store->append(six, &kr) == AppendStatus::ADDED);
    CHECK(store->head(j, owner.key())->seq == 6);
  }
  SECTION("an empty batch") {
    CHECK(store->appendBatch({}, &kr).empty());
  }
  SECTION("append() throws the refusal and leaves the store as it was") {
    size_t before = store->changeCounter();
    try {
      store->append(batch[11], &kr);
      FAIL("a gap was accepted");
    } catch (const EntryError& e) {
      CHECK(e.reason() == Rejection::BROKEN_CHAIN);
      CHECK(e.kind() == ErrorKind::CORRUPT);
    }
    CHECK(store->changeCounter() == before);
    CHECK(store->append(batch[4], &kr) == AppendStatus::DUPLICATE);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

TEST_CASE("range rangePacked and the find functions respect their bounds", "[store]") {
  TempDir dir;
  Person owner("owner");
  auto store = Store::open(dir.path());
  Keyring kr = owner.keyring();
  JournalId j = createJournal(*store, kr, "ranges");
  for (int i = 0; i < 20; ++i) post(*store, kr, j, Body{Kind::UPDATE, "post " + std::to_string(i), {}});
  auto all = store->range(j, owner.key(), 1, RANGE_LIMIT_MAX);
  REQUIRE(all.size() == 21);
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].seq == i + 1);
    if (i > 0) CHECK(all[i].prev == all[i - 1].id);
  }

  CHECK(store->range(j, owner.key(), 5, 3).size() == 3);
  CHECK(store->range(j, owner.key(), 5, 3)[0].seq == 5);
  CHECK(store->range(j, owner.key(), 22, 10).empty());
  CHECK(store->range(j, randomKey32(), 1, 10).empty());
  CHECK(store->range(j, owner.key(), 0, 1)[0].seq == 1);

  auto packed = store->rangePacked(j, owner.key(), 1, 100, SIZE_MAX);
  REQUIRE(packed.size() == 21);
  CHECK(packed[3] == protocol::packEntry(all[3]));
  // A byte budget smaller than one entry still returns one, so that a reader always progresses.
  CHECK(store->rangePacked(j, owner.key(), 1, 100, 1).size() == 1);
  size_t two = packed[0].size() + packed[1].size();
  CHECK(store->rangePacked(j, owner.key(), 1, 100, two).size() == 2);

  std::string hex = toHex(j);
  CHECK(store->findJournals(hex.substr(0, 5)) == std::vector<JournalId>{j});
  std::string upper = hex.substr(0, 6);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  CHECK(store->findJournals(upper) == std::vector<JournalId>{j});
  CHECK(store->findJournals(hex + "0").empty());
  CHECK(store->findJournals("xyz").empty());

  std::string id = toHex(all[7].id);
  CHECK(store->findEntries(id, 10) == std::vector<EntryId>{all[7].id});
  CHECK(store->findEntries(id.substr(0, 3), 10).size() >= 1);
  CHECK(store->findEntries("", 5).size() == 5);
  CHECK(store->findEntries("", 100).size() == 21);
  CHECK(store->findEntries("zz", 100).empty());
}

// ---------------------------------------------------------------------------------------------
// Epoch keys at rest

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

// ---------------------------------------------------------------------------------------------
// Map growth

std::vector<Entry> chainOf(const Person& author, const JournalId& j, Head head, size_t n, size_t textBytes,
                           ByteView key) {
  std::vector<Entry> out;
  EntryId prev = head.id;
  for (size_t i = 0; i < n; ++i) {
    std::string text = "entry " + std::to_string(head.seq + 1 + i) + " ";
    text.resize(textBytes, static_cast<char>('a' + i % 26));
    out.push_back(makePost(author, j, head.seq + 1 + i, prev, 1'700'000'000'000 + static_cast<int64_t>(i), 0, text, key));
    prev = out.back().id;
  }
  return out;
}

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

// ---------------------------------------------------------------------------------------------
// Schema and damaged files

TEST_CASE("a store of a newer schema is refused", "[store]") {
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

TEST_CASE("a garbage data.mdb is an error and not a crash", "[store]") {
  uint64_t seed = testSeed();
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

// ---------------------------------------------------------------------------------------------
// Two processes

// Waits for (or, when the test failed first, kills and reaps) a forked child.
struct Child {
  pid_t pid = -1;
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  int wait() {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    pid = -1;
    return status;
  }
};

TEST_CASE("two processes posting to one store at once never fork a chain", "[store]") {
  TempDir dir;
  Person owner("owner");
  Keyring kr = owner.keyring();
  // A small map, so that both processes grow it while the other writes.
  const StoreOptions options{size_t{1} << 20, size_t{64} << 20};
  constexpr int POSTS = 120;
  const std::string filler(4000, '.');
  JournalId j;
  {
    auto store = Store::open(dir.path(), options);
    j = createJournal(*store, kr, "shared");
  }  // No environment is open across fork() (LMDB forbids using one in the child).

  int ready[2], go[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(go) == 0);
  std::cout.flush();
  Child child;
  child.pid = ::fork();
  REQUIRE(child.pid >= 0);
  if (child.pid == 0) {
    // The child: no Catch macros, and _exit so that nothing of the parent's runs twice.
    int rc = 1;
    try {
      auto store = Store::open(dir.path(), options);
      char c = 'r';
      if (::write(ready[1], &c, 1) == 1 && ::read(go[0], &c, 1) == 1) {
        for (int i = 0; i < POSTS; ++i) post(*store, kr, j, Body{Kind::UPDATE, "child " + std::to_string(i) + filler, {}});
        rc = 0;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    }
    ::_exit(rc);
  }
  {
    auto store = Store::open(dir.path(), options);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    REQUIRE(::write(go[1], &c, 1) == 1);
    for (int i = 0; i < POSTS; ++i) post(*store, kr, j, Body{Kind::UPDATE, "parent " + std::to_string(i) + filler, {}});
  }
  int status = child.wait();
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  auto store = Store::open(dir.path(), options);
  CHECK(store->mapBytes() > options.mapBytesInitial);
  CHECK(store->forks(j).empty());
  CHECK(store->journal(j)->entryCount == 1 + 2 * POSTS);
  CHECK(store->head(j, owner.key())->seq == 1 + 2 * POSTS);
  auto chain = store->range(j, owner.key(), 1, RANGE_LIMIT_MAX);
  REQUIRE(chain.size() == 1 + 2 * POSTS);
  for (size_t i = 0; i < chain.size(); ++i) {
    CHECK(chain[i].seq == i + 1);
    if (i > 0) CHECK(chain[i].prev == chain[i - 1].id);
  }
  // Every post is there once, and each process's posts are in the chain in the order it made them.
  Bytes key = copyOf(*store->epochKey(j, 0, kr.storageKey));
  int parentNext = 0, childNext = 0, switches = 0;
  std::string lastWriter;
  for (size_t i = 1; i < chain.size(); ++i) {
    auto body = protocol::openBody(chain[i], key);
    REQUIRE(body.has_value());
    std::string writer = body->text.substr(0, body->text.find(' '));
    int n = std::stoi(body->text.substr(writer.size() + 1));
    if (writer == "parent") {
      CHECK(n == parentNext++);
    } else {
      CHECK(writer == "child");
      CHECK(n == childNext++);
    }
    if (writer != lastWriter && !lastWriter.empty()) switches++;
    lastWriter = writer;
  }
  CHECK(parentNext == POSTS);
  CHECK(childNext == POSTS);
  WARN("the two writers took turns " << switches << " times");
}

}  // namespace
