#include "node/relay-invite.h"

#include "base/clock.h"
#include "crypto/aead.h"
#include "protocol/invite.h"

namespace kith::node {

namespace {

kj::Promise<void> putOne(relayrpc::Mailbox::Client mailbox, Bytes envelope) {
  auto request = mailbox.putRequest();
  request.initEnvelopes(1).set(0, asData(envelope));
  return request.send().ignoreResult();
}

}  // namespace

struct RelayInviteLink::Live {
  kj::Own<RelayConnection> connection;
  relayrpc::Mailbox::Client mailbox = nullptr;
  uint64_t cursor = 0;
};

RelayInviteLink::RelayInviteLink(UvEventPort& port, Replicator& replicator, RelayInviteTarget target, Bytes token)
    : port_(port), replicator_(replicator), target_(std::move(target)), token_(std::move(token)),
      keys_(protocol::inviteMailboxKeys(target_.invite, target_.relay.key)), tasks_(*this) {}

RelayInviteLink::~RelayInviteLink() noexcept(false) {}

void RelayInviteLink::taskFailed(kj::Exception&& exception) {
  replicator_.log().warn("invite {} through relay: {}", shortId(target_.invite), exception.getDescription().cStr());
}

void RelayInviteLink::start() { tasks_.add(runLoop(0)); }

kj::Promise<void> RelayInviteLink::runLoop(unsigned failures) {
  const protocol::RelayAddress& relay = target_.relay;
  auto admin =
      std::make_shared<crypto::Identity>(protocol::relayAdminKey(replicator_.identity(), target_.invite, relay.key));
  auto session = connectRelay(port_, port_.getTimer(), relay.host, relay.port, relay.key)
                     .then([this, admin](kj::Own<RelayConnection> connection) {
                       auto live = std::make_shared<Live>();
                       live->connection = kj::mv(connection);
                       // Made already by `kith invite`; made again if the relay lost it (creating is idempotent).
                       return live->connection->create(keys_, *admin, token_)
                           .then([this, live]() { return live->connection->open(keys_); })
                           .then([this, live](relayrpc::Mailbox::Client mailbox) {
                             live->mailbox = kj::mv(mailbox);
                             return serve(live);
                           });
                     });
  return session
      .then([]() { return 0u; },
            [this, failures](kj::Exception&& e) {
              logLoopFailure(replicator_.log(), "answering invites through a relay", failures + 1, e);
              return failures + 1;
            })
      .then([this](unsigned next) {
        return port_.getTimer().afterDelay(loopRetryDelay(next)).then([this, next]() { return runLoop(next); });
      });
}

kj::Promise<void> RelayInviteLink::serve(std::shared_ptr<Live> live) {
  auto request = live->mailbox.getRequest();
  request.setAfter(live->cursor);
  request.setWait(true);
  return request.send().then([this, live](capnp::Response<relayrpc::Mailbox::GetResults>&& response) {
    kj::Promise<void> answers = kj::READY_NOW;
    for (auto envelope : response.getEnvelopes()) {
      live->cursor = std::max(live->cursor, envelope.getCursor());
      auto d = envelope.getData();
      auto message = protocol::openMessage(keys_.envelopeKey.view(), ByteView(d.begin(), d.size()));
      if (!message || message->first != protocol::MESSAGE_REDEEM_REQUEST) continue;  // answers, garbage
      auto request = protocol::decodeRedeemRequest(message->second);
      if (!request) {
        replicator_.log().warn("invite {}: a malformed or unsigned request through the relay, ignored",
                               shortId(target_.invite));
        continue;
      }
      protocol::RedeemAnswer reply = answer(*request);
      Bytes sealed = protocol::sealMessage(keys_.envelopeKey.view(), protocol::MESSAGE_REDEEM_ANSWER,
                                           protocol::encodeRedeemAnswer(reply));
      answers = answers.then(
          [live, sealed = std::move(sealed)]() mutable { return putOne(live->mailbox, std::move(sealed)); });
    }
    live->cursor = std::max(live->cursor, response.getCursor());
    return answers.then([this, live]() { return serve(live); });
  });
}

protocol::RedeemAnswer RelayInviteLink::answer(const protocol::RedeemRequest& request) {
  protocol::RedeemAnswer reply;
  reply.member = request.member;
  std::string who = shortId(request.member);
  if (protocol::inviteId(request.secret) != target_.invite) {
    reply.reason = "the code's secret does not match this invite";
    return reply;
  }
  store::Store& store = replicator_.store();
  store::Keyring keyring{replicator_.identity(), replicator_.storageKey()};
  store::Redemption redeemed;
  try {
    redeemed = store.redeemInvite(target_.invite, request.member, nowMs(), keyring);
  } catch (const std::exception& e) {
    replicator_.log().warn("[relay invite {}] could not add {}: {}", shortId(target_.invite), who, e.what());
    reply.reason = "the owner's node could not add you";
    return reply;
  }
  // The same friend asking again (a second `kith accept`) gets the same answer.
  bool again =
      redeemed.status == store::InviteStatus::USED && redeemed.invite && redeemed.invite->usedBy == request.member;
  if (redeemed.status != store::InviteStatus::OPEN && !again) {
    replicator_.log().warn("[relay invite {}] refused {}: {}", shortId(target_.invite), who,
                           store::inviteStatusText(redeemed.status));
    reply.reason = store::inviteStatusText(redeemed.status);
    return reply;
  }
  const store::Invite& invite = *redeemed.invite;
  auto info = store.journal(invite.journal);
  auto key = info ? store.epochKey(invite.journal, info->epoch, replicator_.storageKey()) : std::nullopt;
  auto box = crypto::toBoxPublicKey(request.member);
  if (!info || !key || !box) {
    reply.reason = "the owner's node cannot give you the journal's key";
    return reply;
  }
  if (!again) {
    replicator_.log().info("[relay invite {}] {} redeemed an invite to journal {} as {}", shortId(target_.invite), who,
                           shortId(invite.journal), protocol::roleName(invite.role));
    replicator_.notifyChanged();
  }
  ++answered_;
  reply.ok = true;
  reply.journal = invite.journal;
  reply.role = invite.role;
  reply.epoch = info->epoch;
  reply.sealedEpochKey = crypto::sealTo(*box, key->view());
  return reply;
}

kj::Promise<void> registerInviteMailbox(UvEventPort& port, const crypto::Identity& owner, const Key32& invite,
                                        const protocol::RelayAddress& relay, ByteView token) {
  auto keys = std::make_shared<protocol::MailboxKeys>(protocol::inviteMailboxKeys(invite, relay.key));
  auto admin = std::make_shared<crypto::Identity>(protocol::relayAdminKey(owner, invite, relay.key));
  Bytes tokenCopy(token.begin(), token.end());
  return connectRelay(port, port.getTimer(), relay.host, relay.port, relay.key)
      .then([keys, admin, tokenCopy](kj::Own<RelayConnection> connection) {
        auto promise = connection->create(*keys, *admin, tokenCopy);
        return promise.attach(kj::mv(connection));
      });
}

kj::Promise<protocol::RedeemAnswer> redeemThroughRelay(UvEventPort& port, const crypto::Identity& member,
                                                       ByteView secret, const protocol::RelayAddress& relay,
                                                       std::function<void()> waiting) {
  struct State {
    State(const Key32& invite, const PublicKey& relayKey) : keys(protocol::inviteMailboxKeys(invite, relayKey)) {}
    protocol::MailboxKeys keys;
    kj::Own<RelayConnection> connection;
    relayrpc::Mailbox::Client mailbox = nullptr;
    uint64_t cursor = 0;
    PublicKey member{};
    bool toldWaiting = false;
    std::function<void()> waiting;
  };
  auto state = std::make_shared<State>(protocol::inviteId(secret), relay.key);
  state->member = member.publicKey();
  state->waiting = std::move(waiting);
  Bytes request = protocol::sealMessage(state->keys.envelopeKey.view(), protocol::MESSAGE_REDEEM_REQUEST,
                                        protocol::encodeRedeemRequest(protocol::makeRedeemRequest(member, secret)));
  return connectRelay(port, port.getTimer(), relay.host, relay.port, relay.key)
      .then([state](kj::Own<RelayConnection> connection) {
        state->connection = kj::mv(connection);
        return state->connection->open(state->keys);
      })
      .then([state, request = std::move(request)](relayrpc::Mailbox::Client mailbox) mutable {
        state->mailbox = kj::mv(mailbox);
        return putOne(state->mailbox, std::move(request));
      })
      .then([state]() {
        // Read the mailbox until the answer for this member is in it.
        auto next = [state](bool wait, auto& self) -> kj::Promise<protocol::RedeemAnswer> {
          auto get = state->mailbox.getRequest();
          get.setAfter(state->cursor);
          get.setWait(wait);
          return get.send().then(
              [state, wait,
               self](capnp::Response<relayrpc::Mailbox::GetResults>&& response) -> kj::Promise<protocol::RedeemAnswer> {
                for (auto envelope : response.getEnvelopes()) {
                  state->cursor = std::max(state->cursor, envelope.getCursor());
                  auto d = envelope.getData();
                  auto message = protocol::openMessage(state->keys.envelopeKey.view(), ByteView(d.begin(), d.size()));
                  if (!message || message->first != protocol::MESSAGE_REDEEM_ANSWER) continue;
                  auto answer = protocol::decodeRedeemAnswer(message->second);
                  if (answer && answer->member == state->member) return kj::mv(*answer);
                }
                state->cursor = std::max(state->cursor, response.getCursor());
                if (response.getEnvelopes().size() == 0 && !wait) {
                  // Read to the end without an answer: from now on, wait for one.
                  if (!state->toldWaiting && state->waiting) state->waiting();
                  state->toldWaiting = true;
                  return self(true, self);
                }
                return self(wait, self);
              });
        };
        return next(false, next);
      });
}

// ---------------------------------------------------------------------------------------------
// RelayInviteLinks

RelayInviteLinks::RelayInviteLinks(UvEventPort& port, Replicator& replicator, Targets targets,
                                   std::map<PublicKey, Bytes> tokens)
    : port_(port), replicator_(replicator), targets_(std::move(targets)), tokens_(std::move(tokens)) {}

RelayInviteLinks::~RelayInviteLinks() noexcept(false) {
  if (started_) replicator_.removeListener(this);
  links_.clear();
}

void RelayInviteLinks::start() {
  started_ = true;
  replicator_.addListener(this);
  reconcile();
}

void RelayInviteLinks::storeChanged() { reconcile(); }

void RelayInviteLinks::reconcile() {
  std::map<Key32, RelayInviteTarget> wanted;
  int64_t now = nowMs();
  try {
    for (auto& t : targets_()) {
      // Answered while the invite exists and has not expired (a used one still answers its user).
      auto [status, invite] = replicator_.store().checkInvite(t.invite, now);
      if (!invite || status == store::InviteStatus::EXPIRED) continue;
      if (status == store::InviteStatus::UNKNOWN) continue;
      wanted.emplace(t.invite, t);
    }
  } catch (const std::exception& e) {
    replicator_.log().warn("invites through relays: {}", e.what());
    return;
  }
  for (auto it = links_.begin(); it != links_.end();) {
    if (wanted.count(it->first) == 0) {
      it = links_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [id, target] : wanted) {
    if (links_.count(id) != 0) continue;
    auto token = tokens_.find(target.relay.key);
    auto link = kj::heap<RelayInviteLink>(port_, replicator_, target, token == tokens_.end() ? Bytes{} : token->second);
    link->start();
    links_.emplace(id, kj::mv(link));
  }
}

}  // namespace kith::node
