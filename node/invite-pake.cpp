// The short-code pre-handshake (node/invite-pake.h, specs/invite.md "Redemption by short code").
#include "node/invite-pake.h"

#include <kj/debug.h>

#include <cstring>

#include "base/clock.h"
#include "crypto/aead.h"
#include "crypto/cpace.h"
#include "crypto/hash.h"
#include "node/replicator.h"

namespace kith::node {
namespace {

// CPace's inputs besides the password: the channel identifier names this protocol and the slot;
// the associated data names each side's role, so that a reflected share does not confirm.
constexpr std::string_view CI_LABEL = "kith/invite-pake/v1";
constexpr std::string_view AD_FRIEND = "kith/friend";
constexpr std::string_view AD_NODE = "kith/node";
constexpr std::string_view REVEAL_DOMAIN = "kith/invite-pake/reveal";
constexpr std::string_view REVEAL_AD = "kith/invite-pake/v1 reveal";
constexpr uint8_t ANSWER_OK = 0x00;
constexpr uint8_t ANSWER_REFUSED = 0x01;

[[noreturn]] void fail(const std::string& why, kj::Exception::Type type = kj::Exception::Type::FAILED) {
  kj::throwFatalException(kj::Exception(type, __FILE__, __LINE__, kj::str(why.c_str())));
}

Bytes channelId(uint8_t slot) {
  Bytes s{slot};
  return crypto::cpaceLvCat({asBytes(CI_LABEL), s});
}

kj::Promise<Bytes> readExact(kj::AsyncIoStream& stream, size_t n) {
  auto buffer = kj::heap<Bytes>(n);
  if (n == 0) return Bytes{};
  auto& b = *buffer;
  return stream.tryRead(b.data(), n, n).then([buffer = kj::mv(buffer), n](size_t got) mutable -> Bytes {
    if (got < n)
      fail("the peer closed the connection during the short-code exchange", kj::Exception::Type::DISCONNECTED);
    return kj::mv(*buffer);
  });
}

// One frame whose body is `min` to `max` bytes; anything else is refused before its body is read.
kj::Promise<Bytes> readFrame(kj::AsyncIoStream& stream, size_t min, size_t max) {
  return readExact(stream, 2).then([&stream, min, max](Bytes header) {
    size_t length = size_t{header[0]} << 8 | header[1];
    if (length < min || length > max) {
      fail("the peer sent a frame of " + std::to_string(length) + " bytes in the short-code exchange; expected " +
           std::to_string(min) + " to " + std::to_string(max));
    }
    return readExact(stream, length);
  });
}

kj::Promise<void> writeFrame(kj::AsyncIoStream& stream, ByteView body) {
  KITH_ASSERT(body.size() <= 0xffff);
  auto frame = kj::heap<Bytes>(2 + body.size());
  (*frame)[0] = static_cast<uint8_t>(body.size() >> 8);
  (*frame)[1] = static_cast<uint8_t>(body.size());
  if (!body.empty()) std::memcpy(frame->data() + 2, body.data(), body.size());
  auto& f = *frame;
  return stream.write(f.data(), f.size()).attach(kj::mv(frame));
}

crypto::SecretBuffer revealKey(ByteView isk) { return crypto::keyedHash(isk, REVEAL_DOMAIN, {}); }

class PrefixedStream final : public kj::AsyncIoStream {
public:
  PrefixedStream(kj::Own<kj::AsyncIoStream> inner, Bytes prefix) : inner_(kj::mv(inner)), prefix_(std::move(prefix)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    if (used_ == prefix_.size()) return inner_->tryRead(buffer, minBytes, maxBytes);
    size_t n = std::min(maxBytes, prefix_.size() - used_);
    std::memcpy(buffer, prefix_.data() + used_, n);
    used_ += n;
    if (n >= minBytes) return n;
    return inner_->tryRead(static_cast<kj::byte*>(buffer) + n, minBytes - n, maxBytes - n).then([n](size_t more) {
      return n + more;
    });
  }
  kj::Promise<void> write(const void* buffer, size_t size) override { return inner_->write(buffer, size); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void getsockopt(int level, int option, void* value, kj::uint* length) override {
    inner_->getsockopt(level, option, value, length);
  }
  void setsockopt(int level, int option, const void* value, kj::uint length) override {
    inner_->setsockopt(level, option, value, length);
  }
  void getsockname(struct sockaddr* addr, kj::uint* length) override { inner_->getsockname(addr, length); }
  void getpeername(struct sockaddr* addr, kj::uint* length) override { inner_->getpeername(addr, length); }

private:
  kj::Own<kj::AsyncIoStream> inner_;
  Bytes prefix_;
  size_t used_ = 0;
};

// What the node keeps between its answer and the friend's confirmation.
struct NodeRun {
  store::Invite invite;
  crypto::CPaceParty party;
  Bytes ya;
  crypto::SecretBuffer isk;
  crypto::SecretBuffer macKey;
  uint8_t tries;
};

// The log line for a try that did not confirm the password: counted, and burning at the limit.
std::string unconfirmed(const NodeRun& r, const std::string& why) {
  std::string line = "a short code for invite " + shortId(r.invite.id) + " was not confirmed (" + why + "): try " +
                     std::to_string(r.tries) + " of " + std::to_string(protocol::INVITE_SHORT_TRIES_MAX);
  if (r.tries >= protocol::INVITE_SHORT_TRIES_MAX) line += "; the invite is burnt";
  return line;
}

// What the friend keeps between its hello and the node's answer.
struct FriendRun {
  crypto::CPaceParty party;
  Bytes sid;
};

}  // namespace

FirstFrame classifyFirstFrame(uint16_t length) {
  return length == PAKE_HELLO_BYTES ? FirstFrame::PAKE : FirstFrame::NOISE;
}

kj::Own<kj::AsyncIoStream> prefixedStream(kj::Own<kj::AsyncIoStream> inner, Bytes prefix) {
  return kj::heap<PrefixedStream>(kj::mv(inner), std::move(prefix));
}

kj::Promise<std::string> answerShortCode(kj::AsyncIoStream& stream, store::Store& store, const crypto::Identity& me) {
  return readExact(stream, PAKE_HELLO_BYTES).then([&stream, &store, &me](Bytes hello) -> kj::Promise<std::string> {
    if (std::memcmp(hello.data(), PAKE_MAGIC.data(), PAKE_MAGIC.size()) != 0) {
      fail("the short-code hello is for another protocol or version");
    }
    size_t pos = PAKE_MAGIC.size();
    uint8_t slot = hello[pos++];
    Bytes sid(hello.begin() + static_cast<std::ptrdiff_t>(pos),
              hello.begin() + static_cast<std::ptrdiff_t>(pos + PAKE_SID_BYTES));
    pos += PAKE_SID_BYTES;
    Bytes ya(hello.begin() + static_cast<std::ptrdiff_t>(pos), hello.end());
    auto refuse = [&stream, slot](store::InviteStatus status) -> kj::Promise<std::string> {
      std::string reason = status == store::InviteStatus::UNKNOWN
                               ? "no invite has this code here (cancelled, or mistyped)"
                               : store::inviteStatusText(status);
      Bytes body{ANSWER_REFUSED};
      body.insert(body.end(), reason.begin(), reason.end());
      KITH_ASSERT(body.size() <= 1 + PAKE_REASON_BYTES_MAX);
      return writeFrame(stream, body).then([slot, reason]() {
        return "a short code for slot " + std::to_string(slot) + " refused: " + reason;
      });
    };
    auto [status, invite] = store.checkShortInvite(slot, nowMs());
    if (status != store::InviteStatus::OPEN) return refuse(status);
    // The try is counted before anything lets the friend test its guess.
    auto tries = store.countShortTry(invite->id, nowMs());
    if (!tries) return refuse(store.checkInvite(invite->id, nowMs()).first);
    auto party = crypto::CPaceParty::responder(invite->password, channelId(slot), sid, asBytes(AD_NODE));
    auto isk = party.finish(ya, asBytes(AD_FRIEND));
    if (!isk) fail("the friend's CPace share is not a valid ristretto255 element");
    auto macKey = crypto::CPaceParty::macKey(sid, isk->view());
    Bytes answer{ANSWER_OK};
    answer.insert(answer.end(), party.share().begin(), party.share().end());
    Bytes tb = crypto::CPaceParty::tag(macKey.view(), party.share(), asBytes(AD_NODE));
    answer.insert(answer.end(), tb.begin(), tb.end());
    KITH_ASSERT(answer.size() == PAKE_ANSWER_BYTES);
    auto run = kj::heap<NodeRun>(
        NodeRun{*invite, std::move(party), std::move(ya), std::move(*isk), std::move(macKey), *tries});
    auto& r = *run;
    return writeFrame(stream, answer)
        .then([&stream]() { return readFrame(stream, PAKE_CONFIRM_BYTES, PAKE_CONFIRM_BYTES); })
        .then(
            [&stream, &store, &me, &r](Bytes ta) -> kj::Promise<std::string> {
              if (!crypto::CPaceParty::checkTag(r.macKey.view(), r.ya, asBytes(AD_FRIEND), ta)) {
                return unconfirmed(r, "a wrong code");
              }
              store.forgiveShortTry(r.invite.id);
              Bytes plain(me.publicKey().begin(), me.publicKey().end());
              plain.insert(plain.end(), r.invite.secret.begin(), r.invite.secret.end());
              auto key = revealKey(r.isk.view());
              Bytes sealed = crypto::aeadSeal(key.view(), plain, asBytes(REVEAL_AD));
              sodium_memzero(plain.data(), plain.size());
              KITH_ASSERT(sealed.size() == PAKE_REVEAL_BYTES);
              std::string which = "invite " + shortId(r.invite.id);
              return writeFrame(stream, sealed).then([which]() {
                return "a friend proved the short code for " + which + "; it redeems next";
              });
            },
            [&r](kj::Exception&& e) -> kj::Promise<std::string> {
              // A friend whose guess was wrong learns it from our tag and hangs up: the usual way
              // a wrong code ends. The try stays counted either way.
              return unconfirmed(r, e.getDescription().cStr());
            })
        .attach(kj::mv(run));
  });
}

kj::Promise<ShortCodeAnswer> askShortCode(kj::AsyncIoStream& stream, const protocol::ShortInviteCode& code) {
  Bytes sid(PAKE_SID_BYTES);
  crypto::randomBytes(sid);
  auto run = kj::heap<FriendRun>(
      FriendRun{crypto::CPaceParty::initiator(code.password, channelId(code.slot), sid, asBytes(AD_FRIEND)), sid});
  Bytes hello(PAKE_MAGIC.begin(), PAKE_MAGIC.end());
  hello.push_back(code.slot);
  hello.insert(hello.end(), sid.begin(), sid.end());
  hello.insert(hello.end(), run->party.share().begin(), run->party.share().end());
  KITH_ASSERT(hello.size() == PAKE_HELLO_BYTES);
  auto& r = *run;
  return writeFrame(stream, hello)
      .then([&stream]() { return readFrame(stream, 1, std::max(PAKE_ANSWER_BYTES, 1 + PAKE_REASON_BYTES_MAX)); })
      .then([&stream, &r](Bytes answer) -> kj::Promise<ShortCodeAnswer> {
        if (answer[0] == ANSWER_REFUSED) {
          ShortCodeAnswer out;
          out.outcome = ShortCodeAnswer::Outcome::REFUSED;
          out.reason.assign(answer.begin() + 1, answer.end());
          return out;
        }
        if (answer[0] != ANSWER_OK || answer.size() != PAKE_ANSWER_BYTES) {
          fail("the node's short-code answer is malformed");
        }
        Bytes yb(answer.begin() + 1, answer.begin() + 33);
        Bytes tb(answer.begin() + 33, answer.end());
        auto isk = r.party.finish(yb, asBytes(AD_NODE));
        if (!isk) fail("the node's CPace share is not a valid ristretto255 element");
        auto macKey = crypto::CPaceParty::macKey(r.sid, isk->view());
        if (!crypto::CPaceParty::checkTag(macKey.view(), yb, asBytes(AD_NODE), tb)) {
          // Another password: the code is wrong (or this is not the inviting node). Send nothing more.
          ShortCodeAnswer out;
          out.outcome = ShortCodeAnswer::Outcome::WRONG_CODE;
          return out;
        }
        Bytes ta = crypto::CPaceParty::tag(macKey.view(), r.party.share(), asBytes(AD_FRIEND));
        auto key = kj::heap<crypto::SecretBuffer>(revealKey(isk->view()));
        auto& k = *key;
        return writeFrame(stream, ta)
            .then([&stream]() { return readFrame(stream, PAKE_REVEAL_BYTES, PAKE_REVEAL_BYTES); })
            .then([&k](Bytes sealed) {
              auto plain = crypto::aeadOpenSecret(k.view(), sealed, asBytes(REVEAL_AD));
              if (!plain || plain->size() != 32 + protocol::INVITE_SECRET_BYTES) {
                fail("the node's reveal does not open under the short code's key");
              }
              ShortCodeAnswer out;
              out.outcome = ShortCodeAnswer::Outcome::REVEALED;
              std::memcpy(out.node.data(), plain->data(), 32);
              out.secret.assign(plain->data() + 32, plain->data() + plain->size());
              if (!crypto::toBoxPublicKey(out.node)) fail("the node revealed a key that is not a valid Ed25519 key");
              return out;
            })
            .attach(kj::mv(key));
      })
      .attach(kj::mv(run));
}

}  // namespace kith::node
