// Members replicating through a relay (node/relay-link.h) with a real relay (RelayServer over a
// RelayStore on disk) on loopback: no member connects to another. Entries reach everyone live and
// in any order; after a removal the journal moves to a new mailbox that the removed member can
// neither read nor append to.
#include <catch2/catch.hpp>

#include "node/relay-link.h"
#include "node/relay-server.h"
#include "store/relay-store.h"
#include "tests/node/node-fixture.h"

namespace kith::node::test {
namespace {

// A relay on loopback, in the test's event loop.
struct TestRelay {
  explicit TestRelay(UvIoContext& io)
      : identity(crypto::Identity::generate()), sink(std::make_shared<CaptureSink>("relay")),
        log(std::make_shared<spdlog::logger>("relay", sink)),
        store(
            std::make_unique<store::RelayStore>(dir.path(), defaultRelayPolicy(), store::RelayStoreOptions{true, {}})) {
    RelayServerSettings settings;
    settings.host = "127.0.0.1";
    server = std::make_unique<RelayServer>(io.getPort(), *store, identity, settings, *log);
    server->start();
  }
  ~TestRelay() {
    server.reset();
    store.reset();
  }
  protocol::RelayAddress address() const { return {"127.0.0.1", server->listenPort(), identity.publicKey()}; }

  TempDir dir;
  crypto::Identity identity;
  std::shared_ptr<CaptureSink> sink;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<store::RelayStore> store;
  std::unique_ptr<RelayServer> server;
};

// Gives `to` the owner's chain as `from` holds it (what an invite's first sync would bring).
void copyOwnerChain(TestNode& from, TestNode& to, const JournalId& journal) {
  auto entries = from.store->range(journal, from.key(), 1, store::RANGE_LIMIT_MAX);
  auto ring = to.keyring();
  for (const auto& outcome : to.store->appendBatch(entries, &ring)) {
    REQUIRE(outcome.status != store::AppendStatus::REJECTED);
  }
}

bool holdsText(TestNode& node, const JournalId& journal, const std::string& text) {
  if (!node.holds(journal)) return false;
  for (const auto& r : store::readJournal(*node.store, node.keyring(), journal)) {
    if (r.body && r.body->text == text) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("relay: members reach each other only through a relay and a removed member is shut out", "[node][relay]") {
  UvIoContext io;
  TestRelay relay(io);
  TestNode owner(io, "owner"), a(io, "a"), b(io, "b");
  JournalId journal = store::createJournal(*owner.store, owner.keyring(), "Mum's journey");
  store::addMember(*owner.store, owner.keyring(), journal, a.key(), protocol::Role::COAUTHOR);
  store::addMember(*owner.store, owner.keyring(), journal, b.key(), protocol::Role::SUBSCRIBER);
  store::setRelays(*owner.store, owner.keyring(), journal, {relay.address()});
  copyOwnerChain(owner, a, journal);
  copyOwnerChain(owner, b, journal);

  auto links = [&io](TestNode& n) {
    auto l = std::make_unique<RelayLinks>(io.getPort(), *n.replicator, std::map<PublicKey, Bytes>{},
                                          std::function<void()>{});
    l->start();
    return l;
  };
  auto ownerLinks = links(owner), aLinks = links(a), bLinks = links(b);
  REQUIRE(ownerLinks->size() == 1);
  REQUIRE(aLinks->size() == 1);

  protocol::Entry post = owner.post(journal, "surgery went well");
  owner.replicator->notifyChanged();
  REQUIRE(waitFor(
      io, [&] { return holdsText(a, journal, "surgery went well") && holdsText(b, journal, "surgery went well"); }));

  // The owner's node is gone; a co-author's comment still reaches the subscriber.
  ownerLinks.reset();
  a.post(journal, "so glad", protocol::Kind::COMMENT, {post.id});
  a.replicator->notifyChanged();
  REQUIRE(waitFor(io, [&] { return holdsText(b, journal, "so glad"); }));

  // The owner comes back and catches up; then removes b, which re-keys the journal.
  ownerLinks = links(owner);
  REQUIRE(waitFor(io, [&] { return holdsText(owner, journal, "so glad"); }));
  store::removeMember(*owner.store, owner.keyring(), journal, b.key());
  owner.post(journal, "after the removal");
  owner.replicator->notifyChanged();
  REQUIRE(waitFor(io, [&] { return holdsText(a, journal, "after the removal"); }));
  // b learns of its removal through the old mailbox (the re-key is handed to it before the owner
  // closes it), but not the new epoch's key: it reads nothing written since.
  REQUIRE(waitFor(io, [&] {
    auto m = b.store->member(journal, b.key());
    return m && !m->active;
  }));
  runFor(io, 500 * kj::MILLISECONDS);
  CHECK_FALSE(holdsText(b, journal, "after the removal"));
  CHECK_FALSE(b.store->epochKey(journal, 1, b.storageKey.view()));
  // A hostile b writes into the old mailbox with the keys it kept: the relay refuses (closed).
  auto oldKey = b.store->epochKey(journal, 0, b.storageKey.view());
  REQUIRE(oldKey);
  auto oldKeys = protocol::journalMailboxKeys(oldKey->view(), journal, 0, relay.identity.publicKey());
  auto conn = waitWithin(io, connectRelay(io.getPort(), io.getTimer(), "127.0.0.1", relay.server->listenPort(),
                                          relay.identity.publicKey()));
  auto mailbox = waitWithin(io, conn->open(oldKeys));
  auto put = mailbox.putRequest();
  Bytes envelope = protocol::sealEnvelope(oldKeys.envelopeKey.view(), Bytes(100, 7));
  put.initEnvelopes(1).set(0, capnp::Data::Reader(envelope.data(), envelope.size()));
  bool refused = false;
  try {
    waitWithin(io, put.send().ignoreResult());
  } catch (const kj::Exception& e) {
    refused = std::string_view(e.getDescription().cStr()).find("closed") != std::string_view::npos;
  }
  CHECK(refused);
  CHECK(relay.sink->contains("mailbox closed"));
  auto totals = relay.store->totals();
  CHECK(totals.mailboxesClosed >= 1);
}

TEST_CASE("relay: entries that arrive in any order through a relay all end up stored", "[node][relay]") {
  UvIoContext io;
  TestRelay relay(io);
  TestNode owner(io, "owner"), a(io, "a");
  JournalId journal = store::createJournal(*owner.store, owner.keyring(), "Order");
  store::addMember(*owner.store, owner.keyring(), journal, a.key(), protocol::Role::COAUTHOR);
  store::setRelays(*owner.store, owner.keyring(), journal, {relay.address()});
  copyOwnerChain(owner, a, journal);
  // Everything the owner writes next reaches the relay in reverse order, by hand.
  owner.postMany(journal, 40, "reversed");
  auto info = owner.store->journal(journal);
  auto key = owner.store->epochKey(journal, info->epoch, owner.storageKey.view());
  auto keys = protocol::journalMailboxKeys(key->view(), journal, info->epoch, relay.identity.publicKey());
  auto admin = protocol::relayAdminKey(owner.identity, journal, relay.identity.publicKey());
  auto conn = waitWithin(io, connectRelay(io.getPort(), io.getTimer(), "127.0.0.1", relay.server->listenPort(),
                                          relay.identity.publicKey()));
  waitWithin(io, conn->create(keys, admin, {}));
  auto mailbox = waitWithin(io, conn->open(keys));
  auto entries = owner.store->rangePacked(journal, owner.key(), 1, 100, size_t{1} << 20);
  std::reverse(entries.begin(), entries.end());
  auto put = mailbox.putRequest();
  auto list = put.initEnvelopes(static_cast<unsigned>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) {
    Bytes e = protocol::sealEnvelope(keys.envelopeKey.view(), entries[i]);
    list.set(static_cast<unsigned>(i), capnp::Data::Reader(e.data(), e.size()));
  }
  waitWithin(io, put.send().ignoreResult());

  RelayLinks aLinks(io.getPort(), *a.replicator, {}, {});
  aLinks.start();
  REQUIRE(waitFor(io, [&] { return a.headOf(journal, owner.key()) == owner.headOf(journal, owner.key()); }));
  CHECK(holdsText(a, journal, "reversed #0 " + std::string(180, 'x')));
  CHECK(holdsText(a, journal, "reversed #39 " + std::string(180, 'x')));
}

}  // namespace kith::node::test
