// 1,000 half-open connections (issue 9): raw TCP connections that send nothing, and others that
// send half of handshake message 1, then wait. Each unfinished handshake costs the node buffers
// and guarded pages; the node must cap how many it holds (dropping the oldest for a new one), so
// that its memory stays bounded, and a member that dials meanwhile must still get in and
// replicate. The stalled clients are plain sockets: they cost the test process nothing but a file
// descriptor.

#include <catch2/catch.hpp>

#include "tests/node/hostile-peer.h"

namespace kith::node::test {

using protocol::Role;

TEST_CASE("hostile: 1000 half-open connections cost bounded memory and a member still gets in", "[node][hostile]") {
  constexpr size_t SILENT = 500;
  constexpr size_t HALF_FRAMES = 500;
  constexpr size_t BATCH = 100;  // connections opened at once, under the listener's backlog (128)
  constexpr size_t HALF_OPEN_GROWTH_MAX = rssBound(32 * MIB);
  size_t files = raiseFileLimit();
  REQUIRE(files >= 2 * (SILENT + HALF_FRAMES) + 200);  // both ends of each, and the test's own

  UvIoContext io;
  TestNode s(io, "server");
  TestNode h(io, "member");
  auto ring = s.keyring();
  JournalId j = store::createJournal(*s.store, ring, "besieged");
  store::addMember(*s.store, ring, j, h.key(), Role::SUBSCRIBER);
  s.post(j, "before the siege");
  s.start();
  // Half of message 1: its frame header announces 48 bytes, 24 follow.
  Bytes halfFrame{0x00, 0x30};
  halfFrame.resize(2 + 24, 0x5a);
  RssWatch rss;

  RawClients clients;
  size_t sentHalf = 0;
  for (size_t from = 0; from < SILENT + HALF_FRAMES; from += BATCH) {
    size_t to = std::min(SILENT + HALF_FRAMES, from + BATCH);
    for (size_t i = from; i < to; ++i) clients.open(s.port);
    // Every connection of the batch is established and the node has taken them all off the
    // listener's queue (it holds a handshake for each, or dropped one for it).
    bool taken = waitFor(io, [&] {
      for (size_t i = from; i < to; ++i) {
        if (!clients.connected(i)) return false;
      }
      return acceptQueueLength(s.port) == 0;
    });
    INFO("connections " << from << " to " << to);
    REQUIRE(taken);
    for (size_t i = from; i < to; ++i) {
      if (i >= SILENT && clients.send(i, halfFrame)) ++sentHalf;
    }
  }
  // A member dials while they sit there: it gets in, and replicates a post made now. That also
  // lets the node's loop read every half frame sent before.
  followVia(h, j, s, s);
  h.start();
  auto post = s.post(j, "during the siege");
  bool replicated = waitFor(io, [&] { return h.headOf(j, s.key()) == post.seq; });
  rss.sample();
  std::string figures = std::to_string(clients.size()) + " half-open connections (" + std::to_string(sentHalf) +
                        " with half a frame); resident set " + mib(rss.base()) + " + " + mib(rss.peakGrowth()) +
                        "; the member " + (replicated ? "replicated" : "did NOT replicate");
  report("half-open", figures);
  INFO(figures);
  CHECK(replicated);
  CHECK(h.node->sessionCount() == 1);
  CHECK(rss.peakGrowth() <= HALF_OPEN_GROWTH_MAX);
}

}  // namespace kith::node::test
