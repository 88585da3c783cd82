// Appending: the chain (seq, prev), forks, the journal's epoch and the author's role, checked
// against the journal's state inside the write transaction that then writes the entry and its
// indexes. Who may do what is protocol/roles.h; this file applies it to the stored members.
#include "protocol/roles.h"
#include "store/store-impl.h"

namespace kith::store {

using namespace internal;
using protocol::Control;
using protocol::EntryError;
using protocol::Rejection;

AppendStatus Store::Impl::appendIn(WriteTxn& txn, const Entry& e, const Keyring* keyring,
                                   const protocol::Body* knownBody) {
  const Control& ctl = e.control;
  // Chain first: duplicates and forks are recognised whatever the journal's state.
  if (ids.get(txn, e.id)) return AppendStatus::DUPLICATE;
  std::optional<Head> head = headOf(txn, e.journal, e.author);
  uint64_t headSeq = head ? head->seq : 0;
  if (e.seq <= headSeq) {
    forks.put(txn, forkKey(e), protocol::packEntry(e));
    throw EntryError(Rejection::FORK, "a different entry at seq " + std::to_string(e.seq) +
                                          " of this author is already stored (kept as fork evidence)");
  }
  if (e.seq != headSeq + 1) {
    throw EntryError(Rejection::BROKEN_CHAIN,
                     "seq " + std::to_string(e.seq) + " does not follow the stored head " + std::to_string(headSeq));
  }
  if (head ? e.prev != head->id : !isZero(e.prev)) {
    throw EntryError(Rejection::BROKEN_CHAIN, "prev is not the id of the author's previous entry");
  }

  std::optional<JournalRecord> journal = journalRecord(txn, e.journal);
  if (!journal) {
    if (ctl.type != Control::Type::CREATE) {
      throw EntryError(Rejection::UNKNOWN_JOURNAL, "the journal is not held here and this entry is not its creation");
    }
    journal = JournalRecord{e.author, 0, e.timestampMs, e.timestampMs, 0};
    members.put(txn, memberKey(e.journal, e.author), encodeMember(Member{e.author, Role::OWNER, true, 0}));
  } else {
    authorise(txn, e, *journal, keyring, knownBody);
  }

  // Writes.
  Bytes key = entryKey(e.journal, e.author, e.seq);
  entries.put(txn, key, protocol::packEntry(e));
  ids.put(txn, e.id, key);
  heads.put(txn, headKey(e.journal, e.author), encodeHead(Head{e.seq, e.id}));
  timeline.put(txn, timelineKey(e.journal, e.timestampMs, e.id), cat({e.author, u64(e.seq)}));
  journal->entryCount++;
  journal->lastEntryMs = std::max(journal->lastEntryMs, e.timestampMs);
  switch (ctl.type) {
    case Control::Type::ADD_MEMBER:
      members.put(txn, memberKey(e.journal, ctl.member),
                  encodeMember(Member{ctl.member, ctl.role, true, journal->epoch}));
      break;
    case Control::Type::REMOVE_MEMBER: {
      auto m = memberRecord(txn, e.journal, ctl.member);
      KITH_ASSERT(m.has_value());
      m->active = false;
      members.put(txn, memberKey(e.journal, ctl.member), encodeMember(*m));
      journal->epoch = ctl.newEpoch;
      break;
    }
    default:
      break;
  }
  journals.put(txn, e.journal, journal->encode());

  if (keyring != nullptr) {
    for (const auto& wrap : ctl.wraps) {
      if (wrap.member != keyring->identity.publicKey()) continue;
      auto opened = crypto::openSealed(keyring->identity.boxPublicKey(), keyring->identity.boxSecret(), wrap.sealed);
      // A wrap that does not open or is not a key is the owner's bug or malice; the entry
      // itself is valid, so it is kept, and the epoch stays unreadable here.
      if (opened && opened->size() == crypto::AEAD_KEY_BYTES) {
        storeEpochKey(txn, e.journal, wrap.epoch, opened->view(), keyring->storageKey);
      }
    }
  }
  return AppendStatus::ADDED;
}

// The kind of an entry is inside its encrypted body, so only a node that holds the epoch key can
// check it against the author's role (specs/entry.md); a relay checks the rest. For our own
// entries the plaintext is known (`knownBody`) and is not decrypted again.
void Store::Impl::authoriseKind(const Txn& txn, const Entry& e, Role role, const Keyring* keyring,
                                const protocol::Body* knownBody) {
  std::optional<protocol::Body> opened;
  const protocol::Body* body = knownBody;
  if (body == nullptr) {
    if (keyring == nullptr) return;
    const crypto::SecretBuffer* key = cachedEpochKey(txn, e.journal, e.epoch, keyring->storageKey);
    if (key == nullptr) return;
    opened = protocol::openBody(e, key->view());
    if (!opened) throw EntryError(Rejection::MALFORMED, "the body does not decrypt under its epoch's key");
    body = &*opened;
  }
  if (!protocol::mayAuthorKind(role, body->kind)) {
    throw EntryError(Rejection::UNAUTHORISED, body->kind == protocol::Kind::JOURNAL_INFO
                                                  ? "only the owner sets the journal's title"
                                                  : "a subscriber cannot post updates");
  }
  if ((body->kind == protocol::Kind::COMMENT || body->kind == protocol::Kind::HEART) && body->refs.empty()) {
    throw EntryError(Rejection::MALFORMED, "a comment or heart must refer to an entry");
  }
}

void Store::Impl::authorise(const Txn& txn, const Entry& e, const JournalRecord& journal, const Keyring* keyring,
                            const protocol::Body* knownBody) {
  const Control& ctl = e.control;
  auto author = memberRecord(txn, e.journal, e.author);
  if (!author || !author->active) {
    throw EntryError(Rejection::UNAUTHORISED, "the author is not a member of the journal");
  }
  if (!protocol::mayAuthor(author->role)) throw EntryError(Rejection::UNAUTHORISED, "a relay cannot author entries");
  if (e.epoch > journal.epoch + (ctl.type == Control::Type::REMOVE_MEMBER ? 1 : 0)) {
    throw EntryError(Rejection::BAD_EPOCH, "epoch " + std::to_string(e.epoch) + " does not exist yet");
  }
  if (!e.body.empty()) authoriseKind(txn, e, author->role, keyring, knownBody);
  switch (ctl.type) {
    case Control::Type::NONE:
      if (e.body.empty()) throw EntryError(Rejection::MALFORMED, "an entry with neither control nor body");
      break;
    case Control::Type::CREATE:
      throw EntryError(Rejection::BAD_GENESIS, "the journal was already created");
    case Control::Type::ADD_MEMBER: {
      if (!protocol::mayIssue(author->role, ctl.type)) {
        throw EntryError(Rejection::UNAUTHORISED, "only the owner adds members");
      }
      if (!protocol::mayBeAdded(ctl.role)) throw EntryError(Rejection::UNAUTHORISED, "a journal has one owner");
      auto existing = memberRecord(txn, e.journal, ctl.member);
      if (existing && existing->active) throw EntryError(Rejection::UNAUTHORISED, "already a member");
      if (activeMembers(txn, e.journal) >= protocol::MEMBERS_MAX) {
        throw EntryError(Rejection::TOO_LARGE, "the journal has the maximum number of members");
      }
      for (const auto& w : ctl.wraps) {
        if (w.member != ctl.member || w.epoch > journal.epoch || !protocol::receivesKeys(ctl.role)) {
          throw EntryError(Rejection::MALFORMED, "a key wrap of an added member is not for that member's epochs");
        }
      }
      break;
    }
    case Control::Type::REMOVE_MEMBER: {
      if (!protocol::mayIssue(author->role, ctl.type)) {
        throw EntryError(Rejection::UNAUTHORISED, "only the owner removes members");
      }
      auto target = memberRecord(txn, e.journal, ctl.member);
      if (!target || !target->active || !protocol::mayBeRemoved(target->role)) {
        throw EntryError(Rejection::UNAUTHORISED, "the removed key is not a removable member");
      }
      if (ctl.newEpoch != journal.epoch + 1 || e.epoch != ctl.newEpoch) {
        throw EntryError(Rejection::BAD_EPOCH, "a removal must start the next epoch");
      }
      for (const auto& w : ctl.wraps) {
        auto m = memberRecord(txn, e.journal, w.member);
        if (w.epoch != ctl.newEpoch || w.member == ctl.member || !m || !m->active || !protocol::receivesKeys(m->role)) {
          throw EntryError(Rejection::MALFORMED, "a removal's key wrap is not for a remaining member");
        }
      }
      break;
    }
  }
}

// The journal as the write transaction of one appendNext holds it.
class Store::Impl::TxnAppendView final : public AppendView {
public:
  TxnAppendView(Store::Impl& impl, const Txn& txn, const JournalId& journal, const PublicKey& author,
                const Keyring* keyring)
      : impl_(impl), txn_(txn), journalId_(journal), keyring_(keyring), head_(impl.headOf(txn, journal, author)) {
    if (auto r = impl.journalRecord(txn, journal)) journal_ = r->info(journal);
  }

  const std::optional<Head>& head() const override { return head_; }
  const std::optional<JournalInfo>& journal() const override { return journal_; }
  std::optional<Member> member(const PublicKey& key) const override {
    return impl_.memberRecord(txn_, journalId_, key);
  }
  std::vector<Member> members() const override { return impl_.memberRecords(txn_, journalId_); }
  const crypto::SecretBuffer* epochKey(uint32_t epoch) override {
    KITH_ASSERT(keyring_ != nullptr);
    auto it = impl_.keyCache.find({journalId_, epoch});
    if (it == impl_.keyCache.end()) {
      auto key = impl_.loadEpochKey(txn_, journalId_, epoch, keyring_->storageKey, /*throwIfSealedElsewhere=*/true);
      it = impl_.keyCache.emplace(std::make_pair(journalId_, epoch), Store::Impl::CachedKey{std::move(key)}).first;
    }
    return it->second.key ? &*it->second.key : nullptr;
  }

private:
  Store::Impl& impl_;
  const Txn& txn_;
  JournalId journalId_;
  const Keyring* keyring_;
  std::optional<Head> head_;
  std::optional<JournalInfo> journal_;
};

Entry Store::Impl::appendNextIn(WriteTxn& txn, const JournalId& journal, const PublicKey& author, const MakeEntry& make,
                                const Keyring* keyring) {
  TxnAppendView view(*this, txn, journal, author, keyring);
  MadeEntry made = make(view);
  KITH_ASSERT(made.entry.author == author);
  KITH_ASSERT(made.entry.journal == journal);
  appendIn(txn, made.entry, keyring, made.body);
  return std::move(made.entry);
}

AppendStatus Store::append(const Entry& entry, const Keyring* keyring) {
  auto outcome = appendBatch({entry}, keyring);
  if (outcome[0].status == AppendStatus::REJECTED) throw EntryError(outcome[0].reason, outcome[0].message);
  return outcome[0].status;
}

std::vector<AppendOutcome> Store::appendBatch(const std::vector<Entry>& entries, const Keyring* keyring) {
  KITH_ASSERT(entries.size() <= APPEND_BATCH_MAX);
  std::vector<AppendOutcome> outcomes;
  impl_->keyCache.clear();
  impl_->write([&](WriteTxn& txn) {
    outcomes.assign(entries.size(), {});
    for (size_t i = 0; i < entries.size(); ++i) {
      try {
        outcomes[i].status = impl_->appendIn(txn, entries[i], keyring);
      } catch (const EntryError& e) { outcomes[i] = {AppendStatus::REJECTED, e.reason(), e.what()}; }
    }
  });
  impl_->keyCache.clear();
  return outcomes;
}

Entry Store::appendNext(const JournalId& journal, const PublicKey& author, const MakeEntry& make,
                        const Keyring* keyring) {
  std::optional<Entry> made;
  impl_->keyCache.clear();
  try {
    impl_->write([&](WriteTxn& txn) { made = impl_->appendNextIn(txn, journal, author, make, keyring); });
  } catch (...) {
    impl_->keyCache.clear();
    throw;
  }
  impl_->keyCache.clear();
  return std::move(*made);
}

}  // namespace kith::store
