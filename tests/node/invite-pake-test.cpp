// The short-code pre-handshake (node/invite-pake.h) against a real listening Node on loopback:
// the right password reveals the node's key and the invite's secret; wrong ones are counted and
// burn the invite after INVITE_SHORT_TRIES_MAX; hostile first frames (another magic, an invalid
// CPace share, an oversized confirmation) are dropped with a logged reason, and the node goes on.
#include <catch2/catch.hpp>

#include "node/invite-pake.h"
#include "tests/node/node-fixture.h"

namespace kith::node::test {

namespace {

struct ShortInvite {
  protocol::ShortInviteCode code;
  Bytes secret;
  Key32 id{};
};

ShortInvite putShortInvite(TestNode& owner, const JournalId& journal, uint8_t slot) {
  ShortInvite out;
  out.secret = Bytes(protocol::INVITE_SECRET_BYTES);
  randombytes_buf(out.secret.data(), out.secret.size());
  store::Invite invite;
  invite.id = protocol::inviteId(out.secret);
  invite.journal = journal;
  invite.createdMs = nowMs();
  invite.expiresMs = nowMs() + 3600 * 1000;
  invite.hasShort = true;
  invite.slot = slot;
  invite.password = Bytes(protocol::INVITE_SHORT_PASSWORD_BYTES);
  randombytes_buf(invite.password.data(), invite.password.size());
  invite.secret = out.secret;
  owner.store->putInvite(invite);
  out.code = protocol::ShortInviteCode{"127.0.0.1", owner.port, slot, invite.password};
  out.id = invite.id;
  return out;
}

ShortCodeAnswer ask(UvIoContext& io, const protocol::ShortInviteCode& code) {
  auto stream = waitWithin(io, connect(io.getPort(), code.host.c_str(), code.port));
  return waitWithin(io, askShortCode(*stream, code));
}

// Sends `bytes` raw as the first bytes of a connection and waits until the node closes it.
void sendRawAndExpectClose(UvIoContext& io, uint16_t port, Bytes bytes) {
  auto stream = waitWithin(io, connect(io.getPort(), "127.0.0.1", port));
  waitWithin(io, stream->write(bytes.data(), bytes.size()));
  Bytes buffer(1024);
  size_t total = 0;
  for (;;) {
    size_t n = waitWithin(io, stream->tryRead(buffer.data(), 1, buffer.size()));
    if (n == 0) break;
    total += n;
    REQUIRE(total < 1024);  // an answer (97 bytes) at most, then the close
  }
}

Bytes frame(Bytes body) {
  Bytes out(2 + body.size());
  out[0] = static_cast<uint8_t>(body.size() >> 8);
  out[1] = static_cast<uint8_t>(body.size());
  std::copy(body.begin(), body.end(), out.begin() + 2);
  return out;
}

Bytes hello(uint8_t slot, ByteView ya, std::string_view magic = PAKE_MAGIC) {
  Bytes body(magic.begin(), magic.end());
  body.push_back(slot);
  body.insert(body.end(), PAKE_SID_BYTES, 0x11);
  body.insert(body.end(), ya.begin(), ya.end());
  return frame(body);
}

}  // namespace

TEST_CASE("a short code's password reveals the node key and the invite's secret", "[node][invite]") {
  UvIoContext io;
  TestNode owner(io, "owner");
  JournalId j = store::createJournal(*owner.store, owner.keyring(), "family");
  owner.start();
  ShortInvite invite = putShortInvite(owner, j, 42);
  ShortCodeAnswer answer = ask(io, invite.code);
  REQUIRE(answer.outcome == ShortCodeAnswer::Outcome::REVEALED);
  CHECK(answer.node == owner.key());
  CHECK(answer.secret == invite.secret);
  // A proven try is not counted.
  CHECK(owner.store->checkInvite(invite.id, nowMs()).second->shortFailures == 0);
  // Another slot is refused with a reason.
  protocol::ShortInviteCode other = invite.code;
  other.slot = 43;
  ShortCodeAnswer refused = ask(io, other);
  CHECK(refused.outcome == ShortCodeAnswer::Outcome::REFUSED);
  CHECK(refused.reason.find("no invite") != std::string::npos);
}

TEST_CASE("wrong short-code passwords are counted and burn the invite, the right one with it", "[node][invite]") {
  UvIoContext io;
  TestNode owner(io, "owner");
  JournalId j = store::createJournal(*owner.store, owner.keyring(), "family");
  owner.start();
  ShortInvite invite = putShortInvite(owner, j, 7);
  protocol::ShortInviteCode wrong = invite.code;
  for (uint8_t t = 1; t <= protocol::INVITE_SHORT_TRIES_MAX; ++t) {
    wrong.password[0] = static_cast<uint8_t>(invite.code.password[0] ^ t);
    CHECK(ask(io, wrong).outcome == ShortCodeAnswer::Outcome::WRONG_CODE);
    CHECK(waitFor(io, [&] { return owner.store->checkInvite(invite.id, nowMs()).second->shortFailures == t; }));
  }
  CHECK(waitFor(io, [&] { return owner.sink->contains("; the invite is burnt"); }));
  ShortCodeAnswer right = ask(io, invite.code);
  CHECK(right.outcome == ShortCodeAnswer::Outcome::REFUSED);
  CHECK(right.reason.find("burnt") != std::string::npos);
  CHECK(owner.store->checkInvite(invite.id, nowMs()).first == store::InviteStatus::BURNT);
}

TEST_CASE("hostile first frames are dropped with a reason and the node goes on", "[node][invite][hostile]") {
  UvIoContext io;
  TestNode owner(io, "owner");
  JournalId j = store::createJournal(*owner.store, owner.keyring(), "family");
  owner.start();
  ShortInvite invite = putShortInvite(owner, j, 9);
  // Another protocol's magic.
  sendRawAndExpectClose(io, owner.port, hello(9, Bytes(32, 1), "kithpake9"));
  CHECK(waitFor(io, [&] { return owner.sink->contains("another protocol or version"); }));
  // The identity as Ya: refused, and the try it cost stays counted.
  sendRawAndExpectClose(io, owner.port, hello(9, Bytes(32, 0)));
  CHECK(waitFor(io, [&] { return owner.sink->contains("not a valid ristretto255 element"); }));
  CHECK(owner.store->checkInvite(invite.id, nowMs()).second->shortFailures == 1);
  // A first frame of neither length goes to the Noise responder, which refuses it as before.
  sendRawAndExpectClose(io, owner.port, frame(Bytes(200, 7)));
  // A hello whose confirmation frame is oversized.
  {
    Bytes x(32);
    crypto_core_ristretto255_random(x.data());
    auto stream = waitWithin(io, connect(io.getPort(), "127.0.0.1", owner.port));
    Bytes h = hello(9, x);
    waitWithin(io, stream->write(h.data(), h.size()));
    Bytes answer(2 + PAKE_ANSWER_BYTES);
    REQUIRE(waitWithin(io, stream->tryRead(answer.data(), answer.size(), answer.size())) == answer.size());
    Bytes big = frame(Bytes(4000, 1));
    waitWithin(io, stream->write(big.data(), big.size()));
    CHECK(waitFor(io, [&] { return owner.sink->contains("frame of 4000 bytes"); }));
  }
  // After all that, the right code still works (two tries used of three).
  ShortCodeAnswer answer = ask(io, invite.code);
  CHECK(answer.outcome == ShortCodeAnswer::Outcome::REVEALED);
}

}  // namespace kith::node::test
