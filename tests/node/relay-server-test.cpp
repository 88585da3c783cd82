// The relay server (node/relay-server.h) over real loopback TCP, spoken to through the household
// side's own client (node/relay-client.h): mailboxes created, opened, filled and read; a waiting get
// woken by a put on another connection; proofs bound to their connection; rotation, admission,
// the per-address connection limit and envelope sizes, each refused with its reason.
#include <catch2/catch.hpp>

#include "crypto/aead.h"
#include "node/relay-client.h"
#include "node/relay-server.h"
#include "tests/node/node-fixture.h"

namespace kith::node::test {
namespace {

using Catch::Matchers::Contains;
using GetResponse = capnp::Response<relayrpc::Mailbox::GetResults>;
using PutResponse = capnp::Response<relayrpc::Mailbox::PutResults>;

store::RelayPolicy testPolicy() {
  store::RelayPolicy p = defaultRelayPolicy();
  p.mailboxQuotaBytes = 1 << 20;
  return p;
}

// A relay on 127.0.0.1 with an OS-chosen port, its store in a temporary folder, its log captured.
struct TestRelay {
  TestRelay(UvIoContext& io, store::RelayPolicy policy = testPolicy(), RelayServerSettings settings = {})
      : io(io), identity(crypto::Identity::generate()), sink(std::make_shared<CaptureSink>("relay")),
        log(std::make_shared<spdlog::logger>("relay", sink)) {
    log->set_level(spdlog::level::debug);
    store::RelayStoreOptions options;
    options.create = true;
    store = std::make_unique<store::RelayStore>(dir / "relay", policy, options);
    server = std::make_unique<RelayServer>(io.getPort(), *store, identity, settings, *log);
    server->start();
    port = server->listenPort();
  }

  kj::Own<RelayConnection> dial() {
    return waitWithin(io, connectRelay(io.getPort(), io.getTimer(), "127.0.0.1", port, identity.publicKey()));
  }
  std::string dialError() {
    auto s = waitWithin(io, settle(connectRelay(io.getPort(), io.getTimer(), "127.0.0.1", port, identity.publicKey())));
    return s.error;
  }
  const crypto::PublicKey& key() const { return identity.publicKey(); }

  UvIoContext& io;
  TempDir dir;
  crypto::Identity identity;
  std::shared_ptr<CaptureSink> sink;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<store::RelayStore> store;
  std::unique_ptr<RelayServer> server;
  uint16_t port = 0;
};

protocol::MailboxKeys newMailbox(const crypto::PublicKey& relay) {
  Key32 scope;
  crypto::randomBytes(scope);
  return protocol::inviteMailboxKeys(scope, relay);
}

// An envelope as members seal them (of one of the bucket sizes), around `size` random bytes.
Bytes sealed(const protocol::MailboxKeys& keys, size_t size) {
  Bytes packed(size);
  crypto::randomBytes(packed);
  return protocol::sealEnvelope(keys.envelopeKey.view(), packed);
}

kj::Promise<PutResponse> put(relayrpc::Mailbox::Client& mailbox, const std::vector<Bytes>& envelopes) {
  auto req = mailbox.putRequest();
  auto list = req.initEnvelopes(static_cast<unsigned>(envelopes.size()));
  for (size_t i = 0; i < envelopes.size(); ++i) {
    list.set(static_cast<unsigned>(i), capnp::Data::Reader(envelopes[i].data(), envelopes[i].size()));
  }
  return req.send();
}

kj::Promise<GetResponse> get(relayrpc::Mailbox::Client& mailbox, uint64_t after, bool wait) {
  auto req = mailbox.getRequest();
  req.setAfter(after);
  req.setWait(wait);
  return req.send();
}

std::vector<Bytes> dataOf(GetResponse& response) {
  std::vector<Bytes> out;
  for (auto e : response.getEnvelopes()) out.emplace_back(e.getData().begin(), e.getData().end());
  return out;
}

TEST_CASE("a mailbox is created opened filled and read back in order", "[relay][node]") {
  UvIoContext io;
  TestRelay relay(io);
  auto conn = relay.dial();
  auto keys = newMailbox(relay.key());
  auto admin = crypto::Identity::generate();
  waitWithin(io, conn->create(keys, admin, {}));
  waitWithin(io, conn->create(keys, admin, {}));  // idempotent
  auto mailbox = waitWithin(io, conn->open(keys));
  std::vector<Bytes> envelopes = {sealed(keys, 100), sealed(keys, 3000), sealed(keys, 100)};
  auto stored = waitWithin(io, put(mailbox, envelopes));
  CHECK(stored.getStored() == 3);
  CHECK(stored.getCursor() == 3);
  auto again = waitWithin(io, put(mailbox, {envelopes[1]}));
  CHECK(again.getStored() == 0);
  auto got = waitWithin(io, get(mailbox, 0, false));
  CHECK(dataOf(got) == envelopes);
  CHECK(got.getCursor() == 3);
  CHECK_FALSE(got.getClosed());
  auto rest = waitWithin(io, get(mailbox, 2, false));
  REQUIRE(rest.getEnvelopes().size() == 1);
  CHECK(rest.getEnvelopes()[0].getCursor() == 3);
  CHECK(relay.server->stats().envelopesStored == 3);
  auto status = waitWithin(io, conn->relay().statusRequest().send());
  CHECK(std::string(status.getAdmission().cStr()) == "open");
  CHECK(status.getVersion() == protocol::RELAY_PROTOCOL_VERSION);
}

TEST_CASE("a waiting get is woken by a put from another connection", "[relay][node]") {
  UvIoContext io;
  TestRelay relay(io);
  auto writer = relay.dial();
  auto reader = relay.dial();
  auto keys = newMailbox(relay.key());
  auto admin = crypto::Identity::generate();
  waitWithin(io, writer->create(keys, admin, {}));
  auto mine = waitWithin(io, writer->open(keys));
  auto theirs = waitWithin(io, reader->open(keys));
  auto waiting = get(theirs, 0, true).eagerlyEvaluate(nullptr);
  // The get waits: nothing to answer yet. A second waiting get on the same capability is refused.
  auto second = waitWithin(io, settle(get(theirs, 0, true)));
  CHECK_THAT(second.error, Contains("one at a time"));
  CHECK_FALSE(waiting.poll(io.getWaitScope()));
  Bytes envelope = sealed(keys, 200);
  waitWithin(io, put(mine, {envelope}));
  auto woken = waitWithin(io, kj::mv(waiting));
  CHECK(dataOf(woken) == std::vector<Bytes>{envelope});
  CHECK(woken.getCursor() == 1);
}

TEST_CASE("an unknown id and a bad proof get the same refusal", "[relay][node]") {
  UvIoContext io;
  TestRelay relay(io);
  auto conn = relay.dial();
  auto keys = newMailbox(relay.key());
  auto admin = crypto::Identity::generate();
  waitWithin(io, conn->create(keys, admin, {}));
  // The right id with another credential.
  protocol::MailboxKeys forged{keys.id, crypto::SecretBuffer(32), crypto::Identity::generate()};
  auto bad = waitWithin(io, settle(conn->open(forged)));
  CHECK_THAT(bad.error, Contains("no such mailbox or wrong credential"));
  auto unknown = waitWithin(io, settle(conn->open(newMailbox(relay.key()))));
  CHECK_THAT(unknown.error, Contains("no such mailbox or wrong credential"));
  // Removing with the credential instead of the admin key is refused the same way.
  auto notAdmin = waitWithin(io, settleVoid(conn->remove(keys.id, keys.credential)));
  CHECK_THAT(notAdmin, Contains("no such mailbox or wrong credential"));
  CHECK(relay.store->mailbox(keys.id));
  CHECK(relay.sink->contains("refused open mailbox " + toHex(keys.id).substr(0, 8)));
}

TEST_CASE("a proof made for one connection is refused on another", "[relay][node]") {
  UvIoContext io;
  TestRelay relay(io);
  auto first = relay.dial();
  auto second = relay.dial();
  auto keys = newMailbox(relay.key());
  waitWithin(io, first->create(keys, crypto::Identity::generate(), {}));
  auto proof = keys.credential.sign(
      protocol::relayProofMessage(protocol::RelayAction::OPEN, relay.key(), first->clientKey(), keys.id));
  auto req = second->relay().openRequest();
  req.setId(capnp::Data::Reader(keys.id.data(), keys.id.size()));
  req.setProof(capnp::Data::Reader(proof.data(), proof.size()));
  auto replayed = waitWithin(io, settleVoid(req.send().ignoreResult()));
  CHECK_THAT(replayed, Contains("no such mailbox or wrong credential"));
  // On its own connection the same proof opens the mailbox.
  auto ok = first->relay().openRequest();
  ok.setId(capnp::Data::Reader(keys.id.data(), keys.id.size()));
  ok.setProof(capnp::Data::Reader(proof.data(), proof.size()));
  CHECK(waitWithin(io, settleVoid(ok.send().ignoreResult())).empty());
}

TEST_CASE("after a rotation the old mailbox refuses puts as closed and still answers gets", "[relay][node]") {
  UvIoContext io;
  TestRelay relay(io);
  auto conn = relay.dial();
  auto keys = newMailbox(relay.key());
  auto admin = crypto::Identity::generate();
  waitWithin(io, conn->create(keys, admin, {}));
  auto old = waitWithin(io, conn->open(keys));
  Bytes before = sealed(keys, 50);
  waitWithin(io, put(old, {before}));
  auto waiting = get(old, 1, true).eagerlyEvaluate(nullptr);
  auto next = newMailbox(relay.key());
  waitWithin(io, conn->rotate(keys.id, next, admin));
  // The waiting get learns of the close at once.
  auto woken = waitWithin(io, kj::mv(waiting));
  CHECK(woken.getClosed());
  CHECK(woken.getEnvelopes().size() == 0);
  auto refused = waitWithin(io, settle(put(old, {sealed(keys, 50)})));
  CHECK_THAT(refused.error, Contains("mailbox closed"));
  auto got = waitWithin(io, get(old, 0, false));
  CHECK(dataOf(got) == std::vector<Bytes>{before});
  CHECK(got.getClosed());
  // The new mailbox takes puts under its own credential.
  auto fresh = waitWithin(io, conn->open(next));
  CHECK(waitWithin(io, put(fresh, {sealed(next, 50)})).getStored() == 1);
  // A rotation signed by another key than the admin's is refused.
  auto stranger =
      waitWithin(io, settleVoid(conn->rotate(next.id, newMailbox(relay.key()), crypto::Identity::generate())));
  CHECK_THAT(stranger, Contains("no such mailbox or wrong credential"));
}

TEST_CASE("a token relay admits only with a token it issued", "[relay][node]") {
  UvIoContext io;
  store::RelayPolicy policy = testPolicy();
  policy.admission = store::RelayAdmission::TOKEN;
  TestRelay relay(io, policy);
  Bytes token(store::RELAY_TOKEN_BYTES);
  crypto::randomBytes(token);
  relay.store->addToken(token, 1);
  auto conn = relay.dial();
  auto status = waitWithin(io, conn->relay().statusRequest().send());
  CHECK(std::string(status.getAdmission().cStr()) == "token");
  auto admin = crypto::Identity::generate();
  auto keys = newMailbox(relay.key());
  CHECK_THAT(waitWithin(io, settleVoid(conn->create(keys, admin, {}))), Contains("access token"));
  Bytes wrong(store::RELAY_TOKEN_BYTES, 1);
  CHECK_THAT(waitWithin(io, settleVoid(conn->create(keys, admin, wrong))), Contains("unknown access token"));
  CHECK(waitWithin(io, settleVoid(conn->create(keys, admin, token))).empty());
  auto more = newMailbox(relay.key());
  CHECK_THAT(waitWithin(io, settleVoid(conn->create(more, admin, token))), Contains("used"));
  CHECK(relay.server->stats().refusals[static_cast<size_t>(store::RelayRefusalKind::TOKEN_REQUIRED)] == 1);
}

TEST_CASE("connections past the per-address limit are refused at the handshake", "[relay][node]") {
  UvIoContext io;
  RelayServerSettings settings;
  settings.connectionsPerAddress = 2;
  TestRelay relay(io, testPolicy(), settings);
  auto a = relay.dial();
  auto b = relay.dial();
  CHECK_THAT(relay.dialError(), Contains("too many connections from your address"));
  CHECK(relay.sink->contains("connection refused"));
  // One leaves: another may come.
  a = nullptr;
  REQUIRE(waitFor(io, [&]() { return relay.server->stats().connections == 1; }));
  auto c = relay.dial();
  CHECK(relay.server->stats().connections == 2);
}

TEST_CASE("an envelope of a size that is no bucket is refused and nothing is stored", "[relay][node]") {
  UvIoContext io;
  TestRelay relay(io);
  auto conn = relay.dial();
  auto keys = newMailbox(relay.key());
  waitWithin(io, conn->create(keys, crypto::Identity::generate(), {}));
  auto mailbox = waitWithin(io, conn->open(keys));
  Bytes odd(1000, 7);
  auto refused = waitWithin(io, settle(put(mailbox, {sealed(keys, 10), odd})));
  CHECK_THAT(refused.error, Contains("no envelope size"));
  CHECK(waitWithin(io, get(mailbox, 0, false)).getEnvelopes().size() == 0);
  Bytes exact(protocol::ENVELOPE_BUCKETS[1] + crypto::AEAD_OVERHEAD_BYTES, 3);
  CHECK(waitWithin(io, put(mailbox, {exact})).getStored() == 1);
}

TEST_CASE("a full mailbox refuses the writer with the quota in the reason", "[relay][node]") {
  UvIoContext io;
  store::RelayPolicy policy = testPolicy();
  policy.mailboxQuotaEnvelopes = 2;
  TestRelay relay(io, policy);
  auto conn = relay.dial();
  auto keys = newMailbox(relay.key());
  waitWithin(io, conn->create(keys, crypto::Identity::generate(), {}));
  auto mailbox = waitWithin(io, conn->open(keys));
  waitWithin(io, put(mailbox, {sealed(keys, 10), sealed(keys, 10)}));
  auto refused = waitWithin(io, settle(put(mailbox, {sealed(keys, 10)})));
  CHECK_THAT(refused.error, Contains("mailbox full: 2 of 2 envelopes (quota)"));
  CHECK(relay.sink->contains("mailbox full"));
}

}  // namespace
}  // namespace kith::node::test
