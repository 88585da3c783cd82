// The store against a simple in-memory model under random operations: every outcome append can
// give, the journal.h calls, reopening, and every read compared with what the model holds.
//
// Random tests print their seed (as a Catch warning); KITH_TEST_SEED=<seed> replays one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "protocol/roles.h"
#include "store/lmdb.h"
#include "tests/store/store-fixture.h"

namespace {

using namespace kith;
using namespace kith::store;
using namespace kith::store::testing;

// One stretch of membership: from an ADD_MEMBER (in epoch `since`) to a removal with cut-off
// `cut`, or open.
struct ModelTenure {
  Role role = Role::SUBSCRIBER;
  uint32_t since = 0;
  std::optional<uint64_t> cut;
};

struct ModelMember {
  std::vector<ModelTenure> tenures;
  Role role() const { return tenures.back().role; }
  bool active() const { return !tenures.back().cut; }
  uint32_t sinceEpoch() const { return tenures.back().since; }
  // The tenure an entry at (seq, epoch) may stand in: seqs after the earlier cut-offs, epochs from
  // the tenure's first on.
  std::optional<ModelTenure> tenureOf(uint64_t seq, uint32_t epoch) const {
    uint64_t before = 0;
    for (const ModelTenure& t : tenures) {
      if (seq > before && (!t.cut || seq <= *t.cut)) {
        if (epoch < t.since) return std::nullopt;
        return t;
      }
      if (t.cut) before = *t.cut;
    }
    return std::nullopt;
  }
};

struct ModelJournal {
  JournalId id{};
  PublicKey owner{};
  uint32_t epoch = 0;
  int64_t createdMs = 0;
  int64_t lastEntryMs = 0;
  uint64_t entryCount = 0;
  std::map<PublicKey, ModelMember> members;
  std::map<PublicKey, std::vector<Entry>> chains;    // author -> entries, seq 1 first
  std::map<uint32_t, Bytes> keys;                    // every epoch key, as the test knows it
  std::set<uint32_t> held;                           // epochs whose key the node's store holds
  std::set<Bytes> forks;                             // packed fork evidence
  std::map<PublicKey, std::set<uint64_t>> forkSeqs;  // author -> seqs with fork evidence

  bool isActive(const PublicKey& k) const {
    auto it = members.find(k);
    return it != members.end() && it->second.active();
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
    for (const char* outcome : {"ADDED", "DUPLICATE", "fork", "fork kept", "fork not kept", "broken-chain",
                                "unauthorised", "unknown-journal", "bad-epoch"}) {
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
    bool evidenceKept = false;  // a FORK kept as evidence
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
    if (e.seq <= head) {
      // Evidence only of what the author could have written there: at most one per seq and
      // FORKS_PER_AUTHOR_MAX per author.
      auto author = j->members.find(e.author);
      if (author == j->members.end() || !author->second.tenureOf(e.seq, e.epoch)) {
        return refused(Rejection::UNAUTHORISED);
      }
      if (e.epoch > j->epoch + (e.control.type == Control::Type::REMOVE_MEMBER ? 1 : 0)) {
        return refused(Rejection::BAD_EPOCH);
      }
      Expected fork = refused(Rejection::FORK);
      auto seqs = j->forkSeqs.find(e.author);
      fork.evidenceKept =
          seqs == j->forkSeqs.end() || (!seqs->second.count(e.seq) && seqs->second.size() < FORKS_PER_AUTHOR_MAX);
      return fork;
    }
    if (e.seq != head + 1) return refused(Rejection::BROKEN_CHAIN);
    if (e.prev != (head > 0 ? chain->back().id : EntryId{})) return refused(Rejection::BROKEN_CHAIN);
    const Control& c = e.control;
    if (j == nullptr) return c.type == Control::Type::CREATE ? Expected{} : refused(Rejection::UNKNOWN_JOURNAL);

    auto author = j->members.find(e.author);
    if (author == j->members.end()) return refused(Rejection::UNAUTHORISED);
    auto tenure = author->second.tenureOf(e.seq, e.epoch);
    if (!tenure) return refused(Rejection::UNAUTHORISED);
    Role role = tenure->role;
    if (role == Role::RELAY) return refused(Rejection::UNAUTHORISED);
    if (e.epoch > j->epoch + (c.type == Control::Type::REMOVE_MEMBER ? 1 : 0)) return refused(Rejection::BAD_EPOCH);
    // A node that holds the epoch's key also checks the kind inside the body against the role.
    if (!e.body.empty() && j->held.count(e.epoch)) {
      auto body = protocol::openBody(e, j->keys.at(e.epoch));
      if (!body) return refused(Rejection::MALFORMED);
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
        if (role != Role::OWNER) return refused(Rejection::UNAUTHORISED);
        if (c.role == Role::OWNER) return refused(Rejection::UNAUTHORISED);
        if (j->isActive(c.member)) return refused(Rejection::UNAUTHORISED);
        if (j->members.count(c.member) && j->members.at(c.member).tenures.size() >= protocol::MEMBER_TENURES_MAX) {
          return refused(Rejection::TOO_LARGE);
        }
        for (const KeyWrap& w : c.wraps) {
          if (w.member != c.member || w.epoch > j->epoch || c.role == Role::RELAY) return refused(Rejection::MALFORMED);
        }
        break;
      case Control::Type::REMOVE_MEMBER: {
        if (role != Role::OWNER) return refused(Rejection::UNAUTHORISED);
        auto target = j->members.find(c.member);
        if (target == j->members.end() || !target->second.active() || target->second.role() == Role::OWNER) {
          return refused(Rejection::UNAUTHORISED);
        }
        if (c.newEpoch != j->epoch + 1 || e.epoch != c.newEpoch) return refused(Rejection::BAD_EPOCH);
        for (const ModelTenure& t : target->second.tenures) {
          if (t.cut && c.lastSeq < *t.cut) return refused(Rejection::MALFORMED);
        }
        for (const KeyWrap& w : c.wraps) {
          auto m = j->members.find(w.member);
          if (w.epoch != c.newEpoch || w.member == c.member || m == j->members.end() || !m->second.active() ||
              m->second.role() == Role::RELAY) {
            return refused(Rejection::MALFORMED);
          }
        }
        break;
      }
    }
    return {};
  }

  // Records an entry the store took in.
  void apply(const Entry& e, const std::optional<NewKey>& newKey = std::nullopt) {
    const Control& c = e.control;
    if (c.type == Control::Type::CREATE && !model_.count(e.journal)) {
      ModelJournal j;
      j.id = e.journal;
      j.owner = e.author;
      j.createdMs = e.timestampMs;
      j.lastEntryMs = e.timestampMs;
      j.members[e.author].tenures.push_back({Role::OWNER, 0, std::nullopt});
      model_[e.journal] = std::move(j);
    }
    ModelJournal& j = model_.at(e.journal);
    if (newKey) j.keys[newKey->epoch] = newKey->key;
    j.chains[e.author].push_back(e);
    j.entryCount++;
    j.lastEntryMs = std::max(j.lastEntryMs, e.timestampMs);
    if (c.type == Control::Type::ADD_MEMBER) {
      j.members[c.member].tenures.push_back({c.role, j.epoch, std::nullopt});
    } else if (c.type == Control::Type::REMOVE_MEMBER) {
      j.members.at(c.member).tenures.back().cut = c.lastSeq;
      j.epoch = c.newEpoch;
      truncate(j, c.member, c.lastSeq);  // past the cut-off
    }
    if (c.type == Control::Type::ADD_MEMBER || c.type == Control::Type::REMOVE_MEMBER) {
      log_ += std::string(c.type == Control::Type::ADD_MEMBER ? " add " : " remove ") + person(c.member).name + "@" +
              std::to_string(j.epoch) + "/" + std::to_string(c.wraps.size());
    }
    std::set<uint32_t> arrived;
    for (const KeyWrap& w : c.wraps) {
      if (w.member == node().key() && j.held.insert(w.epoch).second) arrived.insert(w.epoch);
    }
    // Entries stored without a key that just arrived are judged now: an author's chain ends
    // before its first entry refused. Not the owner's.
    std::vector<std::pair<PublicKey, uint64_t>> cuts;  // author, entries kept
    for (auto& [author, chain] : j.chains) {
      if (author == j.owner || arrived.empty()) continue;
      for (const Entry& x : chain) {
        if (x.body.empty() || !arrived.count(x.epoch)) continue;
        auto tenure = j.members.at(author).tenureOf(x.seq, x.epoch);
        REQUIRE(tenure.has_value());
        Role role = tenure->role;
        auto key = j.keys.find(x.epoch);
        REQUIRE(key != j.keys.end());
        std::optional<Body> body;
        try {
          body = protocol::openBody(x, key->second);
        } catch (const EntryError&) {}
        if (!body || protocol::refuseBody(role, *body)) {
          cuts.emplace_back(author, x.seq - 1);
          break;
        }
      }
    }
    for (const auto& [author, kept] : cuts) truncate(j, author, kept);
  }

  // The author's chain cut to `seq` entries, and the journal's counts with it.
  static void truncate(ModelJournal& j, const PublicKey& author, uint64_t seq) {
    auto it = j.chains.find(author);
    if (it == j.chains.end() || it->second.size() <= seq) return;
    j.entryCount -= it->second.size() - seq;
    it->second.resize(seq);
    if (it->second.empty()) j.chains.erase(it);
    j.lastEntryMs = INT64_MIN;
    for (const auto& [a, chain] : j.chains) {
      for (const Entry& x : chain) j.lastEntryMs = std::max(j.lastEntryMs, x.timestampMs);
    }
  }

  // Appends an entry built here (through append() or a one-entry appendBatch, at random) and
  // checks the outcome against the model's prediction.
  void submit(const Entry& e, const std::optional<NewKey>& newKey = std::nullopt) {
    Expected want = predict(e);
    Keyring kr = node().keyring();
    size_t changeBefore = store_->changeCounter();
    AppendOutcome got;
    bool batch = rng_() % 2 != 0;  // append() throws the refusal; appendBatch's outcome says more
    if (!batch) {
      try {
        got.status = store_->append(e, &kr);
      } catch (const EntryError& err) { got = {AppendStatus::REJECTED, err.reason(), err.what()}; }
    } else {
      auto outs = store_->appendBatch({e}, &kr);
      REQUIRE(outs.size() == 1);
      got = outs[0];
    }
    INFO("store said: " << got.message);
    REQUIRE(outcomeName(got.status, got.reason) == want.name());
    if (want.status == AppendStatus::REJECTED && want.reason == Rejection::FORK) {
      if (batch) CHECK(got.evidenceKept == want.evidenceKept);
      outcomes_[want.evidenceKept ? "fork kept" : "fork not kept"]++;
    }
    outcomes_[want.name()]++;
    if (got.status == AppendStatus::REJECTED) CHECK_FALSE(got.message.empty());

    if (got.status == AppendStatus::ADDED) {
      apply(e, newKey);
      auto stored = store_->entry(e.journal, e.author, e.seq);
      REQUIRE(stored.has_value());
      CHECK(stored->id == e.id);
      CHECK(stored->bytes == e.bytes);
      auto byId = store_->entryById(e.id);
      REQUIRE(byId.has_value());
      CHECK(byId->seq == e.seq);
    } else if (got.status == AppendStatus::REJECTED && got.reason == Rejection::FORK && want.evidenceKept) {
      model_.at(e.journal).forks.insert(protocol::packEntry(e));
      model_.at(e.journal).forkSeqs[e.author].insert(e.seq);
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
      if (j.isActive(p->key()) && j.members.at(p->key()).role() != Role::RELAY) out.push_back(p.get());
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
    auto tenure =
        m != j.members.end() && m->second.active() ? m->second.tenureOf(next(j, node()).first, j.epoch) : std::nullopt;
    if (tenure && !tenure->cut) {
      Role r = tenure->role;
      allowed = r == Role::OWNER || r == Role::COAUTHOR || (kind != Kind::UPDATE && r == Role::SUBSCRIBER);
    }
    if (!allowed) {
      refusedCall(ErrorKind::AUTH, [&] { post(*store_, kr, j.id, body); });
      return;
    }
    std::string tenures;
    for (const auto& t : m->second.tenures) {
      tenures += " (" + std::string(protocol::roleName(t.role)) + " since " + std::to_string(t.since) + " cut " +
                 (t.cut ? std::to_string(*t.cut) : "-") + ")";
    }
    std::string held;
    for (uint32_t h : j.held) held += " " + std::to_string(h);
    INFO("epoch " << j.epoch << ", keys held" << held << ", tenures" << tenures << ", log " << log_);
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
      case 0:
        c.role = Role::OWNER;
        break;  // a second owner
      case 1:
        c.role = Role::RELAY;
        c.wraps = {wrapTo(target.key(), 0, j.keys.at(0))};
        break;  // keys to a relay
      case 2:
        c.wraps.push_back(wrapTo(target.key(), j.epoch + 1, randomBytes(32)));
        break;  // a future epoch
      default:
        break;
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
          if (m.active() && k != target.key() && m.role() != Role::RELAY) remaining.insert(k);
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
    // The cut-off: what this node (the owner's, or one that follows the owner) holds of the member.
    auto held = j.chains.find(target.key());
    c.lastSeq = held == j.chains.end() ? 0 : held->second.size();
    if (auto m = j.members.find(target.key()); m != j.members.end()) {
      for (const ModelTenure& t : m->second.tenures) c.lastSeq = std::max(c.lastSeq, t.cut.value_or(0));
    }
    Bytes newKey = randomBytes(crypto::AEAD_KEY_BYTES);
    for (const auto& [k, m] : j.members) {
      if (m.active() && k != target.key() && m.role() != Role::RELAY) c.wraps.push_back(wrapTo(k, c.newEpoch, newKey));
    }
    switch (rng_() % 8) {
      case 0:
        c.newEpoch = j.epoch + 2;
        break;  // skips an epoch
      case 1:
        c.wraps.push_back(wrapTo(target.key(), c.newEpoch, newKey));
        break;  // keys to the removed
      case 2:
        c.lastSeq = c.lastSeq > 0 ? rng_() % c.lastSeq : 0;
        break;  // a cut-off before the member's head: the rest goes (or, under an earlier cut-off, is refused)
      case 3:
        c.lastSeq += 1 + rng_() % 3;
        break;  // a cut-off past what this node holds: those entries may still come
      default:
        break;
    }
    auto [seq, prev] = next(j, owner);
    submit(makeEntry(owner, j.id, seq, prev, timestamp(), c.newEpoch, c, std::nullopt, {}), NewKey{c.newEpoch, newKey});
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
    // Now and then the place of the last fork again (its evidence is kept once), while it holds.
    const Entry* again = nullptr;
    if (lastForked_ && rng_() % 3 == 0) {
      for (const Entry* x : all) {
        if (x->id == *lastForked_) again = x;
      }
    }
    const Entry& original = again != nullptr ? *again : *all[rng_() % all.size()];
    lastForked_ = original.id;
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
    Entry create =
        makeEntry(coauthor, two, 1, EntryId{}, timestamp(), 0, c, Body{Kind::JOURNAL_INFO, "Journal two", {}}, key);
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
      for (const auto& [k, m] : j.members) wantMembers[k] = {m.role(), m.active(), m.sinceEpoch()};
      for (const Member& m : store_->members(id)) {
        const auto& want = j.members.at(m.key).tenures;
        REQUIRE(m.tenures.size() == want.size());
        for (size_t i = 0; i < want.size(); ++i) {
          CHECK(m.tenures[i].role == want[i].role);
          CHECK(m.tenures[i].sinceEpoch == want[i].since);
          CHECK(m.tenures[i].lastSeq == want[i].cut);
        }
      }
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
  std::optional<EntryId> lastForked_;
  std::string log_;
  std::map<std::string, int> outcomes_;
  int reopens_ = 0;
  int textCounter_ = 0;
};

TEST_CASE("the store matches an in-memory model under random operations", "[store]") {
  uint64_t seed = testSeed("store model test");
  WARN("seed " << seed << " (replay with KITH_TEST_SEED=" << seed << ")");
  StoreModel model(seed);
  model.run(400);
}

}  // namespace
