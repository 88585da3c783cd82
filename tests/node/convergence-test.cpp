// Convergence (DESIGN.md property 4): five nodes in one process, two journals with overlapping
// membership, a random peer graph, and a random interleaving of posts by every author, node
// stops and restarts (some with the store closed and reopened) and pauses. Then the owner of
// journal 1 removes a co-author that has written entries the owner has not seen (backdated: its
// node had not learnt of the removal), and the other members take those in before the removal,
// after it, or split around it, each in its own order. At the end every node runs; all members
// of a journal must hold the same entries (compared by a digest of the packed entries in (author,
// seq) order), the removed member's chain ending at the removal's cut-off, and non-members must
// hold nothing of it.
//
// The seed is printed; KITH_TEST_SEED replays a run.

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/node/node-fixture.h"

namespace kith::node::test {
namespace {

using protocol::Kind;
using protocol::Role;

constexpr size_t NODES = 5;
constexpr size_t STEPS = 150;
constexpr size_t STOPPED_MAX = 2;  // nodes down at once, so that the rest keep replicating
constexpr size_t REMOVED = 1;      // the co-author of journal 1 that its owner removes at the end
constexpr kj::Duration CONVERGENCE_DEADLINE = 45 * kj::SECONDS;

struct JournalPlan {
  JournalId id{};
  size_t owner = 0;
  std::map<size_t, Role> members;  // owner included
};

std::string describeHeads(const VersionVector& vv) {
  std::ostringstream out;
  for (const auto& [author, seq] : vv) out << shortId(author) << ":" << seq << " ";
  return out.str();
}

}  // namespace

TEST_CASE("convergence: random posts, restarts and peer graphs end with identical replicas", "[node][convergence]") {
  uint64_t seed = testSeed("convergence");
  INFO("seed " << seed << " (KITH_TEST_SEED replays it)");
  std::mt19937 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  UvIoContext io;
  std::vector<std::unique_ptr<TestNode>> nodes;
  for (size_t i = 0; i < NODES; ++i) nodes.push_back(std::make_unique<TestNode>(io, "n" + std::to_string(i)));

  // Journal 1: n0 owns it, n1 and n2 co-author, n3 and n4 subscribe.
  // Journal 2: n2 owns it, n0 co-authors, n4 subscribes; n1 and n3 must never hold it.
  std::vector<JournalPlan> plans(2);
  plans[0].owner = 0;
  plans[0].members = {
      {0, Role::OWNER}, {1, Role::COAUTHOR}, {2, Role::COAUTHOR}, {3, Role::SUBSCRIBER}, {4, Role::SUBSCRIBER}};
  plans[1].owner = 2;
  plans[1].members = {{2, Role::OWNER}, {0, Role::COAUTHOR}, {4, Role::SUBSCRIBER}};
  for (auto& plan : plans) {
    TestNode& owner = *nodes[plan.owner];
    auto ring = owner.keyring();
    plan.id = store::createJournal(*owner.store, ring, "journal of " + owner.name);
    for (const auto& [index, role] : plan.members) {
      if (index != plan.owner) store::addMember(*owner.store, ring, plan.id, nodes[index]->key(), role);
      nodes[index]->follow(plan.id);
    }
  }

  // Every node has exchanged keys with every other (trusted); ports are fixed by a first start.
  for (auto& n : nodes) {
    for (auto& other : nodes) {
      if (other != n) n->trusted.push_back(other->key());
    }
    n->start();
  }
  for (auto& n : nodes) n->stop();

  // A random dial graph in which each journal's members are connected among themselves (only
  // members carry a journal's entries): a random tree over journal 2's members, the others
  // attached at random, then a few random extra edges (sometimes both ways, which the nodes
  // must resolve to one connection).
  std::set<std::pair<size_t, size_t>> edges;
  auto link = [&](size_t u, size_t v) {
    if (u == v) return;
    if (rng() % 2) std::swap(u, v);
    edges.insert({u, v});
  };
  std::vector<size_t> order;
  for (const auto& [index, role] : plans[1].members) order.push_back(index);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<size_t> rest;
  for (size_t i = 0; i < NODES; ++i) {
    if (!plans[1].members.count(i)) rest.push_back(i);
  }
  std::shuffle(rest.begin(), rest.end(), rng);
  // The co-author removed at the end comes last, so that no other member reaches journal 1 only
  // through it (members refuse it once it is removed).
  std::stable_partition(rest.begin(), rest.end(), [](size_t i) { return i != REMOVED; });
  order.insert(order.end(), rest.begin(), rest.end());
  for (size_t k = 1; k < order.size(); ++k) link(order[k], order[pick(k)]);
  size_t extra = pick(4);
  for (size_t k = 0; k < extra; ++k) link(pick(NODES), pick(NODES));
  std::ostringstream graph;
  for (const auto& [u, v] : edges) {
    nodes[u]->dial(*nodes[v]);
    graph << "n" << u << "->n" << v << " ";
  }
  std::fprintf(stderr, "convergence: dial graph %s\n", graph.str().c_str());
  INFO("dial graph " << graph.str());

  for (auto& n : nodes) n->start();

  // The random schedule.
  auto began = std::chrono::steady_clock::now();
  auto seconds = [](auto from) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
  };
  size_t posts = 0;
  size_t stops = 0;
  size_t reopens = 0;
  for (size_t step = 0; step < STEPS; ++step) {
    unsigned action = rng() % 10;
    if (action < 5) {
      // A member that holds the journal posts: updates from the owner and co-authors, comments
      // and hearts from anyone (on the journal's first entry).
      const JournalPlan& plan = plans[pick(plans.size())];
      std::vector<std::pair<size_t, Role>> holders;
      for (const auto& [index, role] : plan.members) {
        if (nodes[index]->holds(plan.id)) holders.emplace_back(index, role);
      }
      const auto& [authorIndex, authorRole] = holders[pick(holders.size())];  // the owner always holds it
      TestNode& author = *nodes[authorIndex];
      bool mayUpdate = authorRole != Role::SUBSCRIBER;
      auto genesis = author.store->entry(plan.id, nodes[plan.owner]->key(), 1);
      REQUIRE(genesis.has_value());
      unsigned count = rng() % 4 == 0 ? 1 + rng() % 30 : 1;
      std::string text = author.name + " at step " + std::to_string(step);
      if (count > 1 && mayUpdate) {
        author.postMany(plan.id, count, text);
      } else {
        count = 1;
        Kind kind = mayUpdate && rng() % 2 ? Kind::UPDATE : (rng() % 2 ? Kind::COMMENT : Kind::HEART);
        std::vector<protocol::EntryId> refs;
        if (kind != Kind::UPDATE) refs.push_back(genesis->id);
        author.post(plan.id, text, kind, refs);
      }
      posts += count;
    } else if (action < 7) {
      // Stop a running node (its store stays), unless too many are down already.
      size_t down = 0;
      for (auto& n : nodes) down += n->running() ? 0 : 1;
      TestNode& n = *nodes[pick(NODES)];
      if (n.running() && down < STOPPED_MAX) {
        n.stop();
        ++stops;
      }
    } else if (action < 8) {
      // Restart a stopped node, sometimes with its store closed and reopened.
      TestNode& n = *nodes[pick(NODES)];
      if (!n.running()) {
        if (rng() % 2) {
          n.reopen();
          ++reopens;
        }
        n.start();
      }
    } else {
      runFor(io, (10 + rng() % 250) * kj::MILLISECONDS);
    }
  }
  std::fprintf(stderr, "convergence: %zu posts, %zu stops, %zu store reopens in %.1f s\n", posts, stops, reopens,
               seconds(began));

  // The removal. Every node stops, so that what each store takes in, and in which order, is this
  // test's choice; the entries are put into the stores as replication would put them.
  for (auto& n : nodes) {
    if (n->running()) n->stop();
  }
  JournalPlan& first = plans[0];
  const size_t removedIndex = REMOVED;  // a co-author of journal 1, in no other journal
  REQUIRE(first.members.at(removedIndex) == Role::COAUTHOR);
  REQUIRE_FALSE(plans[1].members.count(removedIndex));
  TestNode& owner = *nodes[first.owner];
  TestNode& removed = *nodes[removedIndex];
  auto ownerRing = owner.keyring();
  auto chainOf = [&](TestNode& n, const PublicKey& author) {
    std::vector<protocol::Entry> out;
    for (uint64_t from = 1;;) {
      auto part = n.store->range(first.id, author, from, store::RANGE_LIMIT_MAX);
      if (part.empty()) return out;
      from = part.back().seq + 1;
      out.insert(out.end(), part.begin(), part.end());
    }
  };
  auto take = [&](TestNode& n, const std::vector<protocol::Entry>& entries) {
    auto ring = n.keyring();
    for (size_t from = 0; from < entries.size(); from += store::APPEND_BATCH_MAX) {
      size_t to = std::min(entries.size(), from + store::APPEND_BATCH_MAX);
      n.store->appendBatch(
          {entries.begin() + static_cast<std::ptrdiff_t>(from), entries.begin() + static_cast<std::ptrdiff_t>(to)},
          &ring);
    }
  };
  std::vector<protocol::Entry> ownerBefore = chainOf(owner, owner.key());
  take(removed, ownerBefore);  // so that the co-author holds the journal, whatever the schedule did
  // Written by the co-author before it learns of its removal.
  size_t backdated = 3 + pick(6);
  removed.postMany(first.id, backdated, removed.name + " backdated");
  std::vector<protocol::Entry> removedChain = chainOf(removed, removed.key());
  // The owner has seen part of them when it removes the co-author: the cut-off is its head.
  uint64_t ownerHead = owner.headOf(first.id, removed.key());
  uint64_t cutoff = ownerHead + pick(removedChain.size() - ownerHead);  // < the co-author's head
  take(owner, {removedChain.begin(), removedChain.begin() + static_cast<std::ptrdiff_t>(cutoff)});
  protocol::Entry removal = store::removeMember(*owner.store, ownerRing, first.id, removed.key());
  REQUIRE(removal.control.lastSeq == cutoff);
  first.members.erase(removedIndex);
  // And the rest of the members: each takes the co-author's chain in its own way and order.
  auto shuffledPrefix = [&](size_t n) {
    // The first n entries, delivered in a shuffled order and retried as replication retries.
    std::vector<protocol::Entry> part(removedChain.begin(), removedChain.begin() + static_cast<std::ptrdiff_t>(n));
    std::shuffle(part.begin(), part.end(), rng);
    std::vector<protocol::Entry> out;
    for (size_t round = 0; round < n; ++round) out.insert(out.end(), part.begin(), part.end());
    return out;
  };
  std::ostringstream ways;
  for (const auto& [index, role] : first.members) {
    if (index == first.owner) continue;
    TestNode& n = *nodes[index];
    size_t upTo = 1 + pick(removedChain.size());
    switch (pick(4)) {
      case 0:  // all it gets before the removal, which then reaches it over the network
        take(n, ownerBefore);
        take(n, shuffledPrefix(upTo));
        ways << "n" << index << ": " << upTo << " before; ";
        break;
      case 1:  // the removal first, then everything
        take(n, chainOf(owner, owner.key()));
        take(n, shuffledPrefix(removedChain.size()));
        ways << "n" << index << ": all after; ";
        break;
      case 2:  // some before, the removal, the rest after
        take(n, ownerBefore);
        take(n, shuffledPrefix(upTo));
        take(n, chainOf(owner, owner.key()));
        take(n, shuffledPrefix(removedChain.size()));
        ways << "n" << index << ": " << upTo << " before, all after; ";
        break;
      default:  // only what the network brings
        ways << "n" << index << ": network; ";
        break;
    }
  }
  std::fprintf(stderr, "convergence: n%zu removed with cut-off %llu of %zu; %s\n", removedIndex,
               static_cast<unsigned long long>(cutoff), removedChain.size(), ways.str().c_str());
  INFO("removal: cut-off " << cutoff << " of " << removedChain.size() << "; " << ways.str());
  // The new epoch is used.
  owner.post(first.id, "after the removal");

  auto finalPhase = std::chrono::steady_clock::now();

  // Everyone back, then run until every member holds every author's whole chain.
  for (auto& n : nodes) {
    if (!n->running()) n->start();
  }
  auto expectedHeads = [&](const JournalPlan& plan) {
    // Each author's own store is the truth about its chain; the removed co-author's ends at the
    // cut-off.
    VersionVector vv;
    for (const auto& [index, role] : plan.members) {
      uint64_t seq = nodes[index]->holds(plan.id) ? nodes[index]->headOf(plan.id, nodes[index]->key()) : 0;
      if (seq > 0) vv[nodes[index]->key()] = seq;
    }
    if (&plan == &first && cutoff > 0) vv[removed.key()] = cutoff;
    return vv;
  };
  auto converged = [&] {
    for (const auto& plan : plans) {
      VersionVector expected = expectedHeads(plan);
      for (const auto& [index, role] : plan.members) {
        if (nodes[index]->heads(plan.id) != expected) return false;
      }
    }
    return true;
  };
  bool done = waitFor(io, converged, CONVERGENCE_DEADLINE);
  if (!done) {
    for (const auto& plan : plans) {
      UNSCOPED_INFO("journal " << shortId(plan.id) << " expected " << describeHeads(expectedHeads(plan)));
      for (const auto& [index, role] : plan.members) {
        UNSCOPED_INFO("  n" << index << " holds " << describeHeads(nodes[index]->heads(plan.id)));
      }
    }
  }
  std::fprintf(stderr, "convergence: %s after %.1f s\n", done ? "converged" : "did NOT converge", seconds(finalPhase));
  REQUIRE(done);
  // Quiescent: a little more running changes nothing.
  runFor(io, 300 * kj::MILLISECONDS);
  REQUIRE(converged());

  for (size_t p = 0; p < plans.size(); ++p) {
    const JournalPlan& plan = plans[p];
    JournalDigest reference = digest(*nodes[plan.owner]->store, plan.id);
    uint64_t expectedEntries = 0;
    for (const auto& [author, seq] : expectedHeads(plan)) expectedEntries += seq;
    CHECK(reference.entries == expectedEntries);
    for (size_t i = 0; i < NODES; ++i) {
      INFO("journal " << p + 1 << ", node n" << i);
      if (&plan == &first && i == removedIndex) continue;  // removed: it keeps what it had
      JournalDigest d = digest(*nodes[i]->store, plan.id);
      if (plan.members.count(i)) {
        CHECK(d == reference);
        // And every member reads every body.
        size_t unreadable = 0;
        for (const auto& r : store::readJournal(*nodes[i]->store, nodes[i]->keyring(), plan.id)) {
          if (!r.entry.body.empty() && !r.body) ++unreadable;
        }
        CHECK(unreadable == 0);
      } else {
        CHECK_FALSE(d.held);
      }
    }
  }
  // Nothing was refused along the way but the removed co-author's entries past its cut-off:
  // every other push followed the chains.
  const std::string removedAuthor = "author " + shortId(removed.key()) + " ";
  size_t refusedPastCutoff = 0;
  for (auto& n : nodes) {
    INFO("node " << n->name);
    for (const std::string& line : n->sink->lines()) {
      if (line.find("refused an entry") == std::string::npos) continue;
      INFO(line);
      CHECK(line.find(removedAuthor) != std::string::npos);
      ++refusedPastCutoff;
    }
  }
  std::fprintf(stderr, "convergence: %zu refusals of the removed co-author's entries logged\n", refusedPastCutoff);
}

}  // namespace kith::node::test
