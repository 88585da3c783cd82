#include "node/relay-link.h"

#include <algorithm>

#include "base/clock.h"
#include "node/limits.h"

namespace kith::node {

namespace {

bool says(const kj::Exception& e, const char* what) {
  return std::string_view(e.getDescription().cStr()).find(what) != std::string_view::npos;
}

// A packed entry received through a relay, with what sorting and bookkeeping need.
struct Received {
  PublicKey author{};
  uint64_t seq = 0;
  Bytes packed;
};

// Whether a packed entry belongs in the mailbox of `epoch`: the entries of that epoch and earlier
// ones, and the owner's removal that re-keyed the journal into the next (the remaining members
// learn the new key from it). Nothing of a later epoch: whoever was removed can still read it.
bool belongsIn(const Bytes& packed, uint32_t epoch, const PublicKey& owner) {
  protocol::Entry e;
  try {
    e = protocol::unpackEntry(packed);
  } catch (const protocol::EntryError&) { return false; }
  if (e.epoch <= epoch) return true;
  return e.author == owner && e.control.type == protocol::Control::Type::REMOVE_MEMBER &&
         e.control.newEpoch == epoch + 1;
}

}  // namespace

struct RelayLink::Conn {
  Conn(kj::Own<RelayConnection> connection, protocol::MailboxKeys keys, uint32_t epoch)
      : connection(kj::mv(connection)), keys(std::move(keys)), epoch(epoch) {}
  kj::Own<RelayConnection> connection;
  protocol::MailboxKeys keys;
  uint32_t epoch;
  relayrpc::Mailbox::Client mailbox = nullptr;
};

RelayLink::RelayLink(UvEventPort& port, Replicator& replicator, const JournalId& journal, protocol::RelayAddress relay,
                     const PublicKey& ingestAs, Bytes token, std::function<void()> changed)
    : port_(port), replicator_(replicator), journal_(journal), ingestAs_(ingestAs), token_(std::move(token)),
      changed_(std::move(changed)), canceler_(kj::heap<kj::Canceler>()), tasks_(*this) {
  state_.journal = journal;
  state_.relay = std::move(relay);
}

RelayLink::~RelayLink() noexcept(false) {
  live_.reset();
  canceler_->cancel("the relay link is closing");
}

void RelayLink::taskFailed(kj::Exception&& exception) {
  replicator_.log().warn("relay {}: {}", formatRelay(), exception.getDescription().cStr());
}

std::string RelayLink::formatRelay() const {
  return state_.relay.host + ":" + std::to_string(state_.relay.port) + " (journal " + shortId(journal_) + ")";
}

void RelayLink::setConnected(bool connected, const std::string& error) {
  state_.connected = connected;
  if (!error.empty()) state_.lastError = error;
  if (connected) state_.lastError.clear();
  if (changed_) changed_();
}

void RelayLink::start() {
  if (running_) return;
  running_ = true;
  tasks_.add(runLoop(0));
}

kj::Promise<void> RelayLink::runLoop(unsigned failures) {
  auto session = open().then([this](std::shared_ptr<Conn> conn) {
    return pullUntilEmpty(conn).then([this, conn]() {
      live_ = conn;
      setConnected(true);
      replicator_.log().info("relay {}: connected, mailbox of epoch {} open", formatRelay(), conn->epoch);
      // What changed while connecting (the journal may even have moved to a new epoch).
      storeChanged();
      return pullLive(conn);
    });
  });
  return canceler_->wrap(kj::mv(session))
      .then([this]() { return 0u; },
            [this, failures](kj::Exception&& e) {
              live_.reset();
              bool restart = says(e, "moved to a new epoch");
              if (!restart) {
                if (failures < LOOP_FAILURES_LOGGED || (failures + 1) % LOOP_FAILURES_LOG_EVERY == 0) {
                  replicator_.log().warn("relay {}: {} (retrying in {} ms)", formatRelay(), e.getDescription().cStr(),
                                         loopRetryDelay(failures + 1) / kj::MILLISECONDS);
                }
              }
              setConnected(false, e.getDescription().cStr());
              return restart ? 0u : failures + 1;
            })
      .then([this](unsigned next) -> kj::Promise<void> {
        // 0: the journal moved to a new epoch; start over in its mailbox at once.
        return port_.getTimer()
            .afterDelay(next == 0 ? 0 * kj::MILLISECONDS : loopRetryDelay(next))
            .then([this, next]() { return runLoop(next); });
      });
}

kj::Promise<std::shared_ptr<RelayLink::Conn>> RelayLink::open() {
  store::Store& store = replicator_.store();
  auto info = store.journal(journal_);
  std::optional<crypto::SecretBuffer> key;
  uint32_t epoch = 0;
  if (info) {
    epoch = info->epoch;
    key = store.epochKey(journal_, info->epoch, replicator_.storageKey());
  }
  if (!key && bootstrapKey_.size() != 0 && (!info || info->epoch <= bootstrapEpoch_)) {
    epoch = bootstrapEpoch_;
    key = crypto::SecretBuffer::copyOf(bootstrapKey_.view());
  }
  if (!info && !key) return KJ_EXCEPTION(DISCONNECTED, "the journal is not held here yet");
  if (!key) return KJ_EXCEPTION(DISCONNECTED, "this node holds no key of the journal's current epoch");
  if (epoch != epoch_) {
    // A new epoch is a new mailbox: read it from its start.
    epoch_ = epoch;
    cursor_ = 0;
    has_.clear();
  }
  auto keys = std::make_shared<protocol::MailboxKeys>(
      protocol::journalMailboxKeys(key->view(), journal_, epoch, state_.relay.key));
  return connectRelay(port_, port_.getTimer(), state_.relay.host, state_.relay.port, state_.relay.key)
      .then([this, keys, epoch](kj::Own<RelayConnection> connection) {
        auto conn = std::make_shared<Conn>(kj::mv(connection), std::move(*keys), epoch);
        return ownerSetup(conn).then([conn]() {
          return conn->connection->open(conn->keys).then([conn](relayrpc::Mailbox::Client mailbox) {
            conn->mailbox = kj::mv(mailbox);
            return conn;
          });
        });
      });
}

kj::Promise<void> RelayLink::ownerSetup(std::shared_ptr<Conn> conn) {
  store::Store& store = replicator_.store();
  auto info = store.journal(journal_);
  if (!info || info->owner != replicator_.identity().publicKey()) return kj::READY_NOW;
  auto admin =
      std::make_shared<crypto::Identity>(protocol::relayAdminKey(replicator_.identity(), journal_, state_.relay.key));
  auto create = [this, conn, admin]() { return conn->connection->create(conn->keys, *admin, token_); };
  if (conn->epoch == 0) return create();
  auto previous = store.epochKey(journal_, conn->epoch - 1, replicator_.storageKey());
  if (!previous) return create();
  auto oldKeys = std::make_shared<protocol::MailboxKeys>(
      protocol::journalMailboxKeys(previous->view(), journal_, conn->epoch - 1, state_.relay.key));
  Key32 from = oldKeys->id;
  // Rotating closes the previous epoch's mailbox (a removed member can no longer append to it)
  // and makes the new one; a relay that never had the old one (added later) gets a create.
  auto rotate = [this, conn, admin, create, from]() {
    return conn->connection->rotate(from, conn->keys, *admin).catch_([this, create](kj::Exception&& e) {
      replicator_.log().debug("relay {}: rotate: {}; creating", formatRelay(), e.getDescription().cStr());
      return create();
    });
  };
  if (transitionPushed_ == conn->epoch) return rotate();
  // Not handed over live (the removal was made while this link was not connected): the owner's
  // chain and the re-key go into the old mailbox first, if it is still open, so that members
  // still reading it learn the new key.
  transitionPushed_ = conn->epoch;
  return conn->connection->open(*oldKeys)
      .then([this, conn, oldKeys](relayrpc::Mailbox::Client mailbox) {
        auto old = std::make_shared<Conn>(kj::Own<RelayConnection>(), std::move(*oldKeys), conn->epoch - 1);
        old->mailbox = kj::mv(mailbox);
        return pushTransition(old, conn->epoch, true).attach(kj::mv(old));
      })
      .catch_([this](kj::Exception&& e) {
        // Closed already (rotated before), or never made on this relay: nothing to hand over.
        replicator_.log().debug("relay {}: the old mailbox: {}", formatRelay(), e.getDescription().cStr());
      })
      .then([rotate]() { return rotate(); });
}

kj::Promise<RelayLink::Batch> RelayLink::getBatch(std::shared_ptr<Conn> conn, bool wait) {
  auto request = conn->mailbox.getRequest();
  request.setAfter(cursor_);
  request.setWait(wait);
  return request.send().then([this, conn](capnp::Response<relayrpc::Mailbox::GetResults>&& response) {
    state_.lastSeenMs = nowMs();
    Batch batch;
    for (auto envelope : response.getEnvelopes()) {
      cursor_ = std::max(cursor_, envelope.getCursor());
      auto d = envelope.getData();
      std::optional<Bytes> inside =
          protocol::openEnvelope(conn->keys.envelopeKey.view(), ByteView(d.begin(), d.size()));
      if (!inside) continue;  // not ours: someone with the credential wrote garbage
      batch.packed.push_back(std::move(*inside));
    }
    cursor_ = std::max(cursor_, response.getCursor());
    batch.any = response.getEnvelopes().size() > 0;
    batch.closed = response.getClosed();
    return batch;
  });
}

kj::Promise<bool> RelayLink::take(std::shared_ptr<Conn> conn, Batch batch) {
  bool any = batch.any, closed = batch.closed;
  // What a closed mailbox still holds is read first: the removal that re-keyed the journal is
  // among it, and with it this member's key of the new epoch.
  return ingest(std::move(batch.packed)).then([this, conn, any, closed]() {
    if (closed && !any) {
      auto info = replicator_.store().journal(journal_);
      if (info && info->epoch > conn->epoch) throw KJ_EXCEPTION(DISCONNECTED, "the journal moved to a new epoch");
      throw KJ_EXCEPTION(DISCONNECTED, "the mailbox was closed by the journal's owner (a new epoch)");
    }
    return any;
  });
}

kj::Promise<bool> RelayLink::pull(std::shared_ptr<Conn> conn, bool wait) {
  return getBatch(conn, wait).then([this, conn](Batch batch) { return take(conn, std::move(batch)); });
}

kj::Promise<void> RelayLink::ingest(std::vector<Bytes> packed) {
  std::vector<Received> received;
  for (Bytes& p : pending_) packed.push_back(std::move(p));
  pending_.clear();
  auto info = replicator_.store().journal(journal_);
  PublicKey owner = info ? info->owner : ingestAs_;
  // What this node holds already is not verified again: as direct replication asks only for what
  // lies beyond its heads, an entry at or below our head of its author is passed over.
  VersionVector held = replicator_.store().versionVector(journal_);
  for (Bytes& p : packed) {
    protocol::Entry e;
    try {
      e = protocol::unpackEntry(p);  // for its place only: ingest verifies everything
    } catch (const protocol::EntryError&) { continue; }
    if (e.journal != journal_) continue;
    uint64_t& has = has_[e.author];
    has = std::max(has, e.seq);
    if (auto h = held.find(e.author); h != held.end() && e.seq <= h->second) continue;
    received.push_back(Received{e.author, e.seq, std::move(p)});
  }
  if (received.empty()) return kj::READY_NOW;
  // The owner's chain first (it says who the others are), each author's entries in order.
  std::sort(received.begin(), received.end(), [&owner](const Received& a, const Received& b) {
    bool ao = a.author == owner, bo = b.author == owner;
    if (ao != bo) return ao;
    if (a.author != b.author) return a.author < b.author;
    return a.seq < b.seq;
  });
  received.erase(
      std::unique(received.begin(), received.end(),
                  [](const Received& a, const Received& b) { return a.author == b.author && a.seq == b.seq; }),
      received.end());
  auto all = std::make_shared<std::vector<Received>>(std::move(received));
  // In batches the replicator takes, all handed over at once: the replicator verifies them side
  // by side and commits them in the order given.
  VersionVector before = replicator_.store().versionVector(journal_);
  auto batches = kj::heapArrayBuilder<kj::Promise<void>>((all->size() + BATCH_ENTRIES_MAX - 1) / BATCH_ENTRIES_MAX);
  auto storedAny = std::make_shared<bool>(false);
  for (size_t start = 0; start < all->size(); start += BATCH_ENTRIES_MAX) {
    size_t end = std::min(all->size(), start + BATCH_ENTRIES_MAX);
    batches.add(kj::evalNow([&]() {
      std::vector<Bytes> batch;
      for (size_t i = start; i < end; ++i) batch.push_back((*all)[i].packed);
      capnp::MallocMessageBuilder message;
      auto root = message.initRoot<rpc::EntrySink::PushParams>();
      fillEntries(root.initEntries(static_cast<unsigned>(batch.size())), batch);
      return replicator_.ingest(journal_, root.asReader().getEntries(), ingestAs_)
          .then([this, all, start, end, storedAny, before](VersionVector heads) {
            for (size_t i = start; i < end; ++i) {
              Received& r = (*all)[i];
              auto it = heads.find(r.author);
              uint64_t head = it == heads.end() ? 0 : it->second;
              auto was = before.find(r.author);
              uint64_t headBefore = was == before.end() ? 0 : was->second;
              if (r.seq <= head) {
                if (r.seq > headBefore) {
                  *storedAny = true;
                  ++state_.received;
                }
                pendingTries_.erase(r.packed);
                continue;
              }
              // Not stored: what it depends on may come later. Kept (bounded) to try again.
              unsigned& tries = pendingTries_[r.packed];
              if (++tries < RELAY_PENDING_TRIES_MAX && pending_.size() < RELAY_PENDING_ENTRIES_MAX) {
                pending_.push_back(r.packed);
              } else {
                pendingTries_.erase(r.packed);
              }
            }
          });
    }));
  }
  return kj::joinPromises(batches.finish()).then([this, storedAny]() -> kj::Promise<void> {
    if (*storedAny && !pending_.empty()) return ingest({});
    return kj::READY_NOW;
  });
}

kj::Promise<void> RelayLink::pullUntilEmpty(std::shared_ptr<Conn> conn) { return drain(conn, getBatch(conn, false)); }

kj::Promise<void> RelayLink::drain(std::shared_ptr<Conn> conn, kj::Promise<Batch> current) {
  return current.then([this, conn](Batch batch) -> kj::Promise<void> {
    if (!batch.any) return take(conn, std::move(batch)).ignoreResult();
    // The next get travels while this batch is verified and stored: one batch ahead at most.
    auto next = getBatch(conn, false);
    return take(conn, std::move(batch)).then([this, conn, next = kj::mv(next)](bool) mutable {
      return drain(conn, kj::mv(next));
    });
  });
}

kj::Promise<void> RelayLink::pullLive(std::shared_ptr<Conn> conn) {
  return pull(conn, true).then([this, conn](bool) { return pullLive(conn); });
}

std::shared_ptr<std::vector<Bytes>> RelayLink::entriesFor(const VersionVector& have, uint32_t epoch,
                                                          VersionVector& last) {
  auto entries = std::make_shared<std::vector<Bytes>>();
  auto info = replicator_.store().journal(journal_);
  if (!info) return entries;
  for (Bytes& p : entriesBeyond(replicator_.store(), journal_, have, last)) {
    if (belongsIn(p, epoch, info->owner)) entries->push_back(std::move(p));
  }
  return entries;
}

kj::Promise<void> RelayLink::pushAll(std::shared_ptr<Conn> conn) {
  VersionVector last;
  auto entries = entriesFor(has_, conn->epoch, last);
  if (last.empty()) return kj::READY_NOW;
  return pushEntries(conn, entries, 0, kj::READY_NOW).then([this, conn, last = kj::mv(last)]() {
    for (const auto& [author, seq] : last) {
      uint64_t& has = has_[author];
      has = std::max(has, seq);
    }
    if (changed_) changed_();
    return pushAll(conn);
  });
}

kj::Promise<void> RelayLink::pushEntries(std::shared_ptr<Conn> conn, std::shared_ptr<std::vector<Bytes>> entries,
                                         size_t from, kj::Promise<void> inFlight) {
  if (from >= entries->size()) return inFlight;
  // Sealed one put at a time (what the relay takes in one: RELAY_PUT_*), so that a long backlog
  // never sits sealed in memory all at once; two puts travel at once (the relay answers each
  // after its commit), so sealing and the relay's disk overlap.
  auto request = conn->mailbox.putRequest();
  std::vector<Bytes> envelopes;
  size_t bytes = 0, next = from;
  for (; next < entries->size() && envelopes.size() < RELAY_PUT_ENVELOPES_MAX; ++next) {
    Bytes envelope = protocol::sealEnvelope(conn->keys.envelopeKey.view(), (*entries)[next]);
    if (!envelopes.empty() && bytes + envelope.size() > RELAY_PUT_BYTES_MAX) break;
    bytes += envelope.size();
    envelopes.push_back(std::move(envelope));
  }
  auto list = request.initEnvelopes(static_cast<unsigned>(envelopes.size()));
  for (size_t i = 0; i < envelopes.size(); ++i) list.set(static_cast<unsigned>(i), asData(envelopes[i]));
  envelopes.clear();
  size_t count = list.size();
  kj::Promise<void> sent = request.send().then([this, count](capnp::Response<relayrpc::Mailbox::PutResults>&&) {
    state_.sent += count;
    state_.lastSeenMs = nowMs();
  });
  return inFlight.then([this, conn, entries, next, sent = kj::mv(sent)]() mutable {
    return pushEntries(conn, entries, next, kj::mv(sent));
  });
}

kj::Promise<void> RelayLink::pushTransition(std::shared_ptr<Conn> old, uint32_t newEpoch, bool ownerChainOnly) {
  // What remaining members need to follow the journal into its new epoch: the entries of the old
  // epoch (by ownerChainOnly, only the owner's chain) and the removal that re-keyed it, which
  // carries their wraps of the new key. Nothing of the new epoch: the removed member can still
  // read the old mailbox.
  VersionVector have = has_;
  if (ownerChainOnly) {
    auto info = replicator_.store().journal(journal_);
    if (!info) return kj::READY_NOW;
    have = replicator_.store().versionVector(journal_);
    have[info->owner] = 0;
  }
  VersionVector last;
  auto entries = entriesFor(have, newEpoch - 1, last);
  if (entries->empty()) return kj::READY_NOW;
  replicator_.log().info("relay {}: handing {} entries of epoch {} and its re-key to the old mailbox", formatRelay(),
                         entries->size(), newEpoch - 1);
  return pushEntries(old, entries, 0, kj::READY_NOW);
}

void RelayLink::schedulePush() {
  if (!live_) return;
  if (pushing_) {
    pushAgain_ = true;
    return;
  }
  if (port_.getTimer().now() < refusedUntil_) return;
  pushing_ = true;
  pushAgain_ = false;
  std::shared_ptr<Conn> conn = live_;
  tasks_.add(canceler_->wrap(pushAll(conn))
                 .then(
                     [this]() {
                       pushing_ = false;
                       if (pushAgain_) schedulePush();
                     },
                     [this, conn](kj::Exception&& e) {
                       pushing_ = false;
                       if (says(e, "mailbox full") || says(e, "relay full")) {
                         refusedUntil_ = port_.getTimer().now() + RELAY_REFUSED_RETRY_MS * kj::MILLISECONDS;
                         replicator_.log().warn(
                             "relay {}: the relay refused our entries: {} (trying again in {} s; members keep "
                             "their own copies)",
                             formatRelay(), e.getDescription().cStr(), RELAY_REFUSED_RETRY_MS / 1000);
                         state_.lastError = e.getDescription().cStr();
                         tasks_.add(
                             port_.getTimer().afterDelay(RELAY_REFUSED_RETRY_MS * kj::MILLISECONDS).then([this]() {
                               schedulePush();
                             }));
                         return;
                       }
                       if (e.getType() == kj::Exception::Type::DISCONNECTED) return;  // the pull loop sees it too
                       replicator_.log().warn("relay {}: push failed: {}", formatRelay(), e.getDescription().cStr());
                     }));
}

void RelayLink::storeChanged() {
  if (!live_) return;
  auto info = replicator_.store().journal(journal_);
  if (info && info->epoch != live_->epoch) {
    // The journal moved to a new epoch (a member was removed): the re-key goes into the old
    // mailbox first (members still reading it learn the new key from it), then the link starts
    // over in the new one. The owner's node does this before it rotates the old mailbox away.
    std::shared_ptr<Conn> old = live_;
    live_.reset();
    if (info->epoch != old->epoch + 1 || transitionPushed_ == info->epoch) {
      canceler_->cancel("the journal moved to a new epoch");
      return;
    }
    transitionPushed_ = info->epoch;
    tasks_.add(canceler_->wrap(pushTransition(old, info->epoch, false))
                   .then([]() {},
                         [this](kj::Exception&& e) {
                           replicator_.log().debug("relay {}: handing the re-key to the old mailbox: {}", formatRelay(),
                                                   e.getDescription().cStr());
                         })
                   .then([this, old]() { canceler_->cancel("the journal moved to a new epoch"); }));
    return;
  }
  schedulePush();
}

kj::Promise<RelaySyncResult> RelayLink::syncOnce(std::function<bool()> until, unsigned waitMs) {
  uint64_t receivedBefore = state_.received, sentBefore = state_.sent;
  return syncRound(std::move(until), waitMs, 0).then([this, receivedBefore, sentBefore]() {
    state_.lastSeenMs = nowMs();
    return RelaySyncResult{state_.received - receivedBefore, state_.sent - sentBefore};
  });
}

kj::Promise<void> RelayLink::syncRound(std::function<bool()> until, unsigned waitMs, unsigned epochMoves) {
  return open().then([this, until = std::move(until), waitMs, epochMoves](std::shared_ptr<Conn> conn) mutable {
    auto moved = [this, conn]() {
      auto info = replicator_.store().journal(journal_);
      return info && info->epoch > conn->epoch;
    };
    return pullUntilEmpty(conn)
        .catch_([moved](kj::Exception&& e) {
          // A closed mailbox whose last envelopes moved the journal on: go on in the new one.
          if (!moved()) kj::throwFatalException(kj::mv(e));
        })
        .then([this, conn, until, waitMs, epochMoves, moved]() mutable -> kj::Promise<void> {
          if (moved() && epochMoves < RELAY_SYNC_EPOCH_MOVES_MAX) {
            // What the old mailbox said moved the journal to a new epoch (this member's key of it
            // came with the removal): the rest is in the new mailbox.
            return syncRound(kj::mv(until), waitMs, epochMoves + 1);
          }
          return pushAll(conn).then([this, conn, until, waitMs]() -> kj::Promise<void> {
            if (!until || until()) return kj::READY_NOW;
            // Wait for what is still to come (the owner's node answering a join), at most waitMs.
            auto waitMore = [this, conn, until](auto& self) -> kj::Promise<void> {
              return pull(conn, true).then([this, conn, until, self](bool) -> kj::Promise<void> {
                if (until()) return kj::READY_NOW;
                return self(self);
              });
            };
            return waitMore(waitMore).exclusiveJoin(port_.getTimer().afterDelay(waitMs * kj::MILLISECONDS));
          });
        });
  });
}

// ---------------------------------------------------------------------------------------------
// RelayLinks

RelayLinks::RelayLinks(UvEventPort& port, Replicator& replicator, std::map<PublicKey, Bytes> tokens,
                       std::function<void()> changed)
    : port_(port), replicator_(replicator), tokens_(std::move(tokens)), changed_(std::move(changed)) {}

RelayLinks::~RelayLinks() noexcept(false) {
  if (started_) replicator_.removeListener(this);
  links_.clear();
}

void RelayLinks::start() {
  started_ = true;
  replicator_.addListener(this);
  reconcile();
}

void RelayLinks::storeChanged() { reconcile(); }

void RelayLinks::reconcile() {
  store::Store& store = replicator_.store();
  const PublicKey& me = replicator_.identity().publicKey();
  store::Keyring keyring{replicator_.identity(), replicator_.storageKey()};
  std::map<std::pair<JournalId, PublicKey>, protocol::RelayAddress> wanted;
  std::map<JournalId, PublicKey> owners;
  try {
    for (const auto& info : store.journals()) {
      auto member = store.member(info.id, me);
      if (!member || !member->active) continue;
      if (!store.epochKey(info.id, info.epoch, replicator_.storageKey())) continue;
      store::RelaysScan& scan = scans_[info.id];
      store::scanRelays(store, keyring, info.id, scan);
      owners[info.id] = info.owner;
      for (const auto& relay : scan.relays) wanted[{info.id, relay.key}] = relay;
    }
  } catch (const std::exception& e) {
    replicator_.log().warn("relays: could not read the journals' relays: {}", e.what());
    return;
  }
  bool changed = false;
  for (auto it = links_.begin(); it != links_.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || !(w->second == it->second->relay())) {
      replicator_.log().info("relay {}:{}: no longer used for journal {}", it->second->relay().host,
                             it->second->relay().port, shortId(it->first.first));
      it = links_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  for (const auto& [k, relay] : wanted) {
    if (links_.count(k) != 0) continue;
    auto token = tokens_.find(relay.key);
    auto link = kj::heap<RelayLink>(port_, replicator_, k.first, relay, owners[k.first],
                                    token == tokens_.end() ? Bytes{} : token->second, changed_);
    link->start();
    links_.emplace(k, kj::mv(link));
    changed = true;
  }
  for (auto& [k, link] : links_) link->storeChanged();
  if (changed && changed_) changed_();
}

std::vector<RelayLinkState> RelayLinks::states() const {
  std::vector<RelayLinkState> out;
  for (const auto& [k, link] : links_) out.push_back(link->state());
  return out;
}

}  // namespace kith::node
