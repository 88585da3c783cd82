// 255 strangers under an open invite (issue 9): while an invite is open, any key may connect to
// redeem it. Strangers must get nothing but `redeemInvite` (`journal()` refused, `journals()`
// refused or empty), must not take the members' places (PEERS_MAX), and must cost the node
// bounded memory. The strangers are cheap clients: three run RPC, the rest complete the handshake
// and then hold their sockets.

#include <catch2/catch.hpp>

#include "tests/node/hostile-peer.h"

namespace kith::node::test {

using protocol::Role;

TEST_CASE("hostile: 255 strangers under an open invite get nothing and do not lock the members out",
          "[node][hostile]") {
  constexpr size_t STRANGERS = 255;
  constexpr size_t RPC_STRANGERS = 3;
  constexpr size_t BATCH = 32;  // handshakes started at once, under the listener's backlog
  constexpr size_t STRANGERS_GROWTH_MAX = rssBound(16 * MIB);
  UvIoContext io;
  TestNode s(io, "server");
  TestNode h1(io, "member1");
  TestNode h2(io, "member2");
  auto ring = s.keyring();
  JournalId j = store::createJournal(*s.store, ring, "open house");
  store::addMember(*s.store, ring, j, h1.key(), Role::SUBSCRIBER);
  store::addMember(*s.store, ring, j, h2.key(), Role::SUBSCRIBER);
  s.post(j, "before the strangers");
  Bytes secret = putInvite(s, j, nowMs() + 3600 * 1000);
  std::vector<crypto::Identity> strangers;
  for (size_t i = 0; i < STRANGERS; ++i) strangers.push_back(crypto::Identity::generate());
  s.start();
  RssWatch rss;

  // Strangers that speak RPC: the journal and the list of journals are refused (a refused
  // handshake, or a connection closed under them, refuses them too).
  std::vector<kj::Own<RpcPeer>> rpcStrangers;
  for (size_t i = 0; i < RPC_STRANGERS; ++i) {
    auto dialled = waitWithin(io, settle(dialRpcAs(io, strangers[i], s.port, s.key(), false)));
    INFO("stranger " << i);
    if (!dialled.ok()) continue;
    rpcStrangers.push_back(kj::mv(*dialled.value));
    RpcPeer& peer = *rpcStrangers.back();
    auto heads =
        waitWithin(io, settle(peer.journal(j).headsRequest().send().then(
                           [](capnp::Response<rpc::Journal::HeadsResults>&& r) { return r.getHeads().size(); })));
    CHECK_FALSE(heads.ok());
    auto listed =
        waitWithin(io, settle(peer.remote.journalsRequest().send().then(
                           [](capnp::Response<rpc::Node::JournalsResults>&& r) { return r.getIds().size(); })));
    CHECK((!listed.ok() || *listed.value == 0));
  }
  CHECK(s.sink->contains("refused journal"));

  // The rest complete the handshake and hold their connections.
  std::vector<CheapConnection> held;
  size_t accepted = 0;
  size_t refused = 0;
  size_t failed = 0;
  for (size_t from = RPC_STRANGERS; from < STRANGERS; from += BATCH) {
    size_t to = std::min(STRANGERS, from + BATCH);
    auto batch = kj::heapArrayBuilder<kj::Promise<Settled<CheapConnection>>>(to - from);
    for (size_t i = from; i < to; ++i) batch.add(settle(cheapHandshake(io, strangers[i], s.port, s.key())));
    for (auto& outcome : waitWithin(io, kj::joinPromises(batch.finish()))) {
      if (!outcome.ok()) {
        ++failed;
      } else if (outcome.value->accepted) {
        ++accepted;
        held.push_back(kj::mv(*outcome.value));
      } else {
        ++refused;
      }
    }
  }
  rss.sample();
  std::string figures = std::to_string(accepted) + " strangers accepted, " + std::to_string(refused) + " refused, " +
                        std::to_string(failed) + " failed; the node holds " + std::to_string(s.node->sessionCount()) +
                        " sessions";
  report("strangers", figures);
  INFO(figures);

  // The members come one after the other, as people do: each gets in and replicates a post.
  for (TestNode* h : {&h1, &h2}) {
    followVia(*h, j, s, s);
    h->start();
    auto post = s.post(j, "for " + h->name);
    bool got = false;
    bool shutOut = false;
    waitFor(io, [&] {
      got = h->headOf(j, s.key()) == post.seq;
      shutOut = h->sink->contains("refused the connection");
      return got || shutOut;
    });
    INFO(h->name);
    CHECK_FALSE(shutOut);
    CHECK(got);
    report("strangers", h->name + (got ? " replicated" : shutOut ? " was refused" : " did NOT replicate"));
  }

  // Strangers never count as peers, and their own pool stays small.
  CHECK(s.node->sessionCount() <= 2);
  CHECK(s.node->redeemerCount() <= REDEEMERS_MAX);

  // A real invitee still gets in while squatters fill the redeemer pool (the oldest makes room),
  // and redeems the invite.
  crypto::Identity invitee = crypto::Identity::generate();
  auto dialled = waitWithin(io, settle(dialRpcAs(io, invitee, s.port, s.key(), false)));
  REQUIRE(dialled.ok());
  auto req = (*dialled.value)->remote.redeemInviteRequest();
  req.setSecret(kj::arrayPtr(secret.data(), secret.size()));
  auto redeemed =
      waitWithin(io, settle(req.send().then([](capnp::Response<rpc::Node::RedeemInviteResults>&&) { return true; })));
  CHECK(redeemed.ok());
  auto joined = s.store->member(j, invitee.publicKey());
  CHECK((joined && joined->active));
  report("strangers", std::string("the invitee ") + (redeemed.ok() ? "redeemed" : "could NOT redeem") +
                          " its invite past the squatters");

  rss.sample();
  report("strangers", "resident set " + mib(rss.base()) + " + " + mib(rss.peakGrowth()) + " at most");
  INFO("resident set grew by " << mib(rss.peakGrowth()));
  CHECK(rss.peakGrowth() <= STRANGERS_GROWTH_MAX);
}

}  // namespace kith::node::test
