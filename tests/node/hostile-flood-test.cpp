// The flooding member (issue 9): a member's client asks for far more than it reads. It pipelines
// thousands of `fetch` calls, each answered with about BATCH_BYTES_MAX, or subscribes to the
// journal again and again with sinks that never answer, over a connection whose socket it never
// reads. The node must stop serving that connection once its send queue holds a few MiB, so that
// its memory stays bounded, and keep serving its honest members meanwhile.
//
// The flood goes in waves; after each, two round trips of another member's connection let the
// node read what the wave sent, then the resident set is sampled. A run over the bound stops
// there (the figure says how far it got), so that an unbounded node costs the machine a bounded
// amount.

#include <catch2/catch.hpp>

#include "tests/node/hostile-peer.h"

namespace kith::node::test {
namespace {

using protocol::Role;

// Entries of about 2 KiB, enough for each fetch answer and each push to be about BATCH_BYTES_MAX.
constexpr size_t LARGE_ENTRY_PAD_BYTES = 2000;
constexpr size_t LARGE_ENTRIES = 600;
// The memory a flood may cost the node, with a generous margin (a few MiB of send queue, buffers).
constexpr size_t FLOOD_GROWTH_MAX = rssBound(64 * MIB);

// A served journal of LARGE_ENTRIES large entries, an honest member that follows it live, a probe
// (another member's raw connection for round trips) and a hostile member's identity.
struct FloodScene {
  UvIoContext io;
  TestNode server{io, "server"};
  TestNode honest{io, "honest"};
  TestNode prober{io, "prober"};
  crypto::Identity hostile = crypto::Identity::generate();
  JournalId journal{};
  kj::Own<RpcPeer> probe;
  kj::Maybe<rpc::Journal::Client> probeJournal;

  FloodScene() {
    auto ring = server.keyring();
    journal = store::createJournal(*server.store, ring, "large");
    store::addMember(*server.store, ring, journal, honest.key(), Role::SUBSCRIBER);
    store::addMember(*server.store, ring, journal, prober.key(), Role::SUBSCRIBER);
    store::addMember(*server.store, ring, journal, hostile.publicKey(), Role::SUBSCRIBER);
    server.postMany(journal, LARGE_ENTRIES, "large", protocol::Kind::UPDATE, LARGE_ENTRY_PAD_BYTES);
    server.start();
    followVia(honest, journal, server, server);
    honest.start();
    REQUIRE(waitFor(io, [&] { return honest.heads(journal) == server.heads(journal); }));
    probe = dialRpc(io, prober, server.port, server.key());
    probeJournal = probe->journal(journal);
    // Warm-up: the journal's pages read, a few large answers built and freed.
    for (int i = 0; i < 3; ++i) waitWithin(io, fetchFromStart(journalOfProbe(), server.key()));
    roundTrips(2);
  }

  rpc::Journal::Client& journalOfProbe() {
    KJ_IF_MAYBE(j, probeJournal) { return *j; }
    KJ_FAIL_ASSERT("no probe");
  }

  // Round trips on the probe's connection: the node's loop has turned and read what was sent to it.
  void roundTrips(int n) {
    for (int i = 0; i < n; ++i) waitWithin(io, journalOfProbe().headsRequest().send().ignoreResult());
  }

  // The honest member gets a post made now.
  bool honestGetsNewPost(const std::string& text) {
    auto post = server.post(journal, text);
    return waitFor(io, [&] { return honest.headOf(journal, server.key()) == post.seq; });
  }
};

}  // namespace

TEST_CASE("hostile: a member that pipelines thousands of fetches and never reads costs bounded memory",
          "[node][hostile]") {
  constexpr size_t CALLS = 2000;
  constexpr size_t WAVE = 25;
  FloodScene scene;
  auto& io = scene.io;

  RssWatch rss;
  auto hostile = waitWithin(io, dialRpcAs(io, scene.hostile, scene.server.port, scene.server.key(), true));
  auto journal = hostile->journal(scene.journal);
  std::vector<kj::Promise<void>> calls;
  calls.reserve(CALLS);
  size_t sent = 0;
  while (sent < CALLS) {
    for (size_t i = 0; i < WAVE; ++i, ++sent) calls.push_back(fetchFromStart(journal, scene.server.key()));
    scene.roundTrips(2);
    if (rss.sample() > FLOOD_GROWTH_MAX) break;
  }
  std::string figures = std::to_string(sent) + " fetch calls sent; resident set " + mib(rss.base()) + " + " +
                        mib(rss.peakGrowth()) + " at most";
  report("fetch flood", figures);
  INFO(figures);
  CHECK(sent == CALLS);
  CHECK(rss.peakGrowth() <= FLOOD_GROWTH_MAX);

  // The flooder is still connected, and the honest member still gets what is posted.
  CHECK(scene.honestGetsNewPost("posted during the flood"));
  rss.sample();
  CHECK(rss.peakGrowth() <= FLOOD_GROWTH_MAX);
}

TEST_CASE("hostile: a member that subscribes again and again with sinks that never answer costs bounded memory",
          "[node][hostile]") {
  constexpr size_t SUBSCRIBES = 512;  // twice what a connection may hold (SUBSCRIPTIONS_PER_PEER_MAX on main)
  constexpr size_t WAVE = 4;
  FloodScene scene;
  auto& io = scene.io;

  RssWatch rss;
  auto hostile = waitWithin(io, dialRpcAs(io, scene.hostile, scene.server.port, scene.server.key(), true));
  auto journal = hostile->journal(scene.journal);
  std::vector<kj::Promise<void>> calls;
  size_t sent = 0;
  while (sent < SUBSCRIBES) {
    for (size_t i = 0; i < WAVE; ++i, ++sent) {
      auto req = journal.subscribeRequest(capnp::MessageSize{16, 1});
      req.initHave(0);  // from the start: every push is a full batch
      req.setSink(kj::heap<SilentSink>());
      calls.push_back(req.send().ignoreResult());
    }
    scene.roundTrips(2);
    if (rss.sample() > FLOOD_GROWTH_MAX) break;
  }
  std::string figures = std::to_string(sent) + " subscribe calls sent; resident set " + mib(rss.base()) + " + " +
                        mib(rss.peakGrowth()) + " at most";
  report("subscription flood", figures);
  INFO(figures);
  CHECK(sent == SUBSCRIBES);
  CHECK(rss.peakGrowth() <= FLOOD_GROWTH_MAX);

  // Posts wake every subscription, the flooder's too: the honest member still gets them, and the
  // flooder's subscriptions still cost no more.
  for (int i = 0; i < 3; ++i) CHECK(scene.honestGetsNewPost("posted during the flood " + std::to_string(i)));
  scene.roundTrips(2);
  rss.sample();
  CHECK(rss.peakGrowth() <= FLOOD_GROWTH_MAX);
}

}  // namespace kith::node::test
