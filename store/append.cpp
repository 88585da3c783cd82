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

namespace {

// An entry this store holds, read back to drop or judge it again. Damage here is the store's, not
// the entry being appended: Error(CORRUPT) aborts the whole write transaction.
Entry storedEntry(ByteView packed) {
  try {
    return protocol::unpackEntry(packed);
  } catch (const EntryError& e) {
    throw Error(ErrorKind::CORRUPT, std::string("an entry in the store is damaged: ") + e.what(), HINT_RESTORE_STORE);
  }
}

}  // namespace

AppendStatus Store::Impl::appendIn(WriteTxn& txn, const Entry& e, const Keyring* keyring,
                                   const protocol::Body* knownBody, AppendEffects& effects) {
  const Control& ctl = e.control;
  // Chain first: duplicates and forks are recognised whatever the journal's state.
  if (ids.get(txn, e.id)) return AppendStatus::DUPLICATE;
  std::optional<Head> head = headOf(txn, e.journal, e.author);
  uint64_t headSeq = head ? head->seq : 0;
  if (e.seq <= headSeq) refuseFork(txn, e, effects);
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
    members.put(txn, memberKey(e.journal, e.author), encodeMember(Member::added(e.author, Role::OWNER, 0)));
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
    case Control::Type::ADD_MEMBER: {
      // A key added again after a removal starts a new tenure; its earlier ones stay, so that its
      // entries up to the last cut-off are still judged by the role they were written under.
      auto m = memberRecord(txn, e.journal, ctl.member);
      Member added = Member::added(ctl.member, ctl.role, journal->epoch);
      if (m) {
        m->tenures.push_back(added.tenures.back());
        added.tenures = std::move(m->tenures);
      }
      members.put(txn, memberKey(e.journal, ctl.member), encodeMember(added));
      break;
    }
    case Control::Type::REMOVE_MEMBER: {
      auto m = memberRecord(txn, e.journal, ctl.member);
      KITH_ASSERT(m.has_value());
      KITH_ASSERT(m->active);
      m->tenures.back().lastSeq = ctl.lastSeq;
      members.put(txn, memberKey(e.journal, ctl.member), encodeMember(*m));
      journal->epoch = ctl.newEpoch;
      // What this node took in past the cut-off, before the removal reached it, goes: every node
      // ends with the member's entries up to the cut-off, whatever order they arrived in.
      effects.dropped += dropFrom(txn, *journal, e.journal, ctl.member, ctl.lastSeq + 1);
      break;
    }
    default:
      break;
  }

  if (keyring != nullptr) {
    std::map<uint32_t, crypto::SecretBuffer> arrived;  // keys this store did not hold
    for (const auto& wrap : ctl.wraps) {
      if (wrap.member != keyring->identity.publicKey()) continue;
      auto opened = crypto::openSealed(keyring->identity.boxPublicKey(), keyring->identity.boxSecret(), wrap.sealed);
      // A wrap that does not open or is not a key is the owner's bug or malice; the entry
      // itself is valid, so it is kept, and the epoch stays unreadable here.
      if (!opened || opened->size() != crypto::AEAD_KEY_BYTES) continue;
      if (storeArrivedEpochKey(txn, e.journal, wrap.epoch, opened->view(), keyring->storageKey)) {
        arrived.insert_or_assign(wrap.epoch, std::move(*opened));
      }
    }
    if (!arrived.empty()) {
      std::map<uint32_t, ByteView> keys;
      for (const auto& [epoch, k] : arrived) keys[epoch] = k.view();
      effects.dropped += rejudge(txn, *journal, e.journal, keys);
    }
  }
  journals.put(txn, e.journal, journal->encode());
  return AppendStatus::ADDED;
}

void Store::Impl::refuseFork(WriteTxn& txn, const Entry& e, AppendEffects& effects) {
  const std::string fork = "a different entry at seq " + std::to_string(e.seq) + " of this author is already stored";
  // Evidence only of what its author could have written at that place: a member (now or before)
  // in a tenure that covers the seq and the epoch, in an epoch that exists.
  auto journal = journalRecord(txn, e.journal);
  authorRole(txn, e, journal ? journal->epoch : 0);
  bool seqHasEvidence = false;
  forks.scan(txn, entryKey(e.journal, e.author, e.seq), [&](ByteView, ByteView) {
    seqHasEvidence = true;
    return false;
  });
  if (seqHasEvidence) throw EntryError(Rejection::FORK, fork + " (not kept: evidence of a fork at this seq is kept)");
  size_t kept = 0;
  forks.scan(txn, headKey(e.journal, e.author), [&](ByteView, ByteView) { return ++kept < FORKS_PER_AUTHOR_MAX; });
  if (kept >= FORKS_PER_AUTHOR_MAX) {
    throw EntryError(Rejection::FORK, fork + " (not kept: " + std::to_string(FORKS_PER_AUTHOR_MAX) +
                                          " pieces of this author's fork evidence are kept, the most)");
  }
  forks.put(txn, forkKey(e), protocol::packEntry(e));
  effects.evidenceKept = true;
  throw EntryError(Rejection::FORK, fork + " (kept as fork evidence)");
}

uint64_t Store::Impl::dropFrom(WriteTxn& txn, JournalRecord& journal, const JournalId& j, const PublicKey& author,
                               uint64_t fromSeq) {
  KITH_ASSERT(fromSeq >= 1);
  auto head = headOf(txn, j, author);
  if (!head || head->seq < fromSeq) return 0;
  struct Gone {
    Bytes key;
    EntryId id;
    int64_t timestampMs;
  };
  std::vector<Gone> gone;
  entries.scan(txn, headKey(j, author), entryKey(j, author, fromSeq), [&](ByteView k, ByteView v) {
    Entry e = storedEntry(v);
    gone.push_back({Bytes(k.begin(), k.end()), e.id, e.timestampMs});
    return true;
  });
  bool lastGone = false;
  for (const Gone& g : gone) {
    entries.del(txn, g.key);
    ids.del(txn, g.id);
    timeline.del(txn, timelineKey(j, g.timestampMs, g.id));
    KITH_ASSERT(journal.entryCount > 0);
    journal.entryCount--;
    lastGone = lastGone || g.timestampMs == journal.lastEntryMs;
  }
  if (fromSeq > 1) {
    auto before = entries.get(txn, entryKey(j, author, fromSeq - 1));
    KITH_ASSERT(before.has_value());  // a chain runs 1..head without gaps
    heads.put(txn, headKey(j, author), encodeHead(Head{fromSeq - 1, storedEntry(*before).id}));
  } else {
    heads.del(txn, headKey(j, author));
  }
  if (lastGone) {
    // The journal's genesis stays, so its timeline is never empty.
    auto last = timeline.lastKey(txn, j);
    KITH_ASSERT(last.has_value());
    journal.lastEntryMs = timeFromOrdered(getU64(last->data() + KEY_BYTES));
  }
  return gone.size();
}

uint64_t Store::Impl::rejudge(WriteTxn& txn, JournalRecord& journal, const JournalId& j,
                              const std::map<uint32_t, ByteView>& epochKeys) {
  // Each author's chain in seq order; the first entry refused drops it and everything after it.
  std::vector<std::pair<PublicKey, uint64_t>> refused;  // author, first seq refused
  std::optional<PublicKey> author;
  bool authorDone = false;
  std::optional<Member> member;
  entries.scan(txn, j, [&](ByteView k, ByteView v) {
    PublicKey a = key32At(k.data() + KEY_BYTES);
    if (!author || *author != a) {
      author = a;
      member = memberRecord(txn, j, a);
      authorDone = !member || member->tenures.front().role == Role::OWNER;
    }
    if (authorDone) return true;
    Entry e = storedEntry(v);
    auto key = epochKeys.find(e.epoch);
    if (e.body.empty() || key == epochKeys.end()) return true;
    // The tenure was judged in the clear on append; the body, with the key, only now.
    auto tenure = protocol::tenureFor(member->tenures, e.seq, e.epoch);
    bool ok = false;
    try {
      auto body = tenure ? protocol::openBody(e, key->second) : std::nullopt;
      ok = body && !protocol::refuseBody(tenure->role, *body);
    } catch (const EntryError&) {}  // a body that decrypts but does not parse
    if (!ok) {
      refused.emplace_back(a, e.seq);
      authorDone = true;
    }
    return true;
  });
  uint64_t dropped = 0;
  for (const auto& [a, seq] : refused) dropped += dropFrom(txn, journal, j, a, seq);
  return dropped;
}

// The kind of an entry is inside its encrypted body, so only a node that holds the epoch key can
// check it against the author's role (specs/entry.md); a relay checks the rest, and a member that
// gets the key later judges the entry then (rejudge). For our own entries the plaintext is known
// (`knownBody`) and is not decrypted again.
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
  if (auto refusal = protocol::refuseBody(role, *body)) throw EntryError(refusal->reason, refusal->message);
}

Role Store::Impl::authorRole(const Txn& txn, const Entry& e, uint32_t journalEpoch) const {
  auto m = memberRecord(txn, e.journal, e.author);
  if (!m) throw EntryError(Rejection::UNAUTHORISED, "the author is not a member of the journal");
  const char* why = "";
  auto tenure = protocol::tenureFor(m->tenures, e.seq, e.epoch, &why);
  if (!tenure) throw EntryError(Rejection::UNAUTHORISED, why);
  if (!protocol::mayAuthor(tenure->role)) throw EntryError(Rejection::UNAUTHORISED, "a relay cannot author entries");
  if (e.epoch > journalEpoch + (e.control.type == Control::Type::REMOVE_MEMBER ? 1 : 0)) {
    throw EntryError(Rejection::BAD_EPOCH, "epoch " + std::to_string(e.epoch) + " does not exist yet");
  }
  return tenure->role;
}

void Store::Impl::authorise(const Txn& txn, const Entry& e, const JournalRecord& journal, const Keyring* keyring,
                            const protocol::Body* knownBody) {
  const Control& ctl = e.control;
  // The role of the tenure the entry belongs to: a removed member's entries up to its cut-off
  // stand, judged by the role it had then; those after it do not.
  Role role = authorRole(txn, e, journal.epoch);
  if (!e.body.empty()) authoriseKind(txn, e, role, keyring, knownBody);
  switch (ctl.type) {
    case Control::Type::NONE:
      if (e.body.empty()) throw EntryError(Rejection::MALFORMED, "an entry with neither control nor body");
      break;
    case Control::Type::CREATE:
      throw EntryError(Rejection::BAD_GENESIS, "the journal was already created");
    case Control::Type::ADD_MEMBER: {
      if (!protocol::mayIssue(role, ctl.type)) throw EntryError(Rejection::UNAUTHORISED, "only the owner adds members");
      if (!protocol::mayBeAdded(ctl.role)) throw EntryError(Rejection::UNAUTHORISED, "a journal has one owner");
      auto existing = memberRecord(txn, e.journal, ctl.member);
      if (existing && existing->active) throw EntryError(Rejection::UNAUTHORISED, "already a member");
      if (existing && existing->tenures.size() >= protocol::MEMBER_TENURES_MAX) {
        throw EntryError(Rejection::TOO_LARGE, "this key was added to the journal the most times there may be");
      }
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
      if (!protocol::mayIssue(role, ctl.type)) {
        throw EntryError(Rejection::UNAUTHORISED, "only the owner removes members");
      }
      auto target = memberRecord(txn, e.journal, ctl.member);
      if (!target || !target->active || !protocol::mayBeRemoved(target->role)) {
        throw EntryError(Rejection::UNAUTHORISED, "the removed key is not a removable member");
      }
      if (ctl.newEpoch != journal.epoch + 1 || e.epoch != ctl.newEpoch) {
        throw EntryError(Rejection::BAD_EPOCH, "a removal must start the next epoch");
      }
      // The owner's store keeps what it held, so a cut-off never goes back past an earlier one.
      for (const auto& t : target->tenures) {
        if (t.lastSeq && ctl.lastSeq < *t.lastSeq) {
          throw EntryError(Rejection::MALFORMED, "the removal's cut-off is before the member's earlier one");
        }
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
  std::optional<Head> headOf(const PublicKey& author) const override { return impl_.headOf(txn_, journalId_, author); }
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
  AppendEffects effects;
  appendIn(txn, made.entry, keyring, made.body, effects);
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
      Impl::AppendEffects effects;
      try {
        outcomes[i].status = impl_->appendIn(txn, entries[i], keyring, nullptr, effects);
      } catch (const EntryError& e) { outcomes[i] = {AppendStatus::REJECTED, e.reason(), e.what()}; }
      outcomes[i].evidenceKept = effects.evidenceKept;
      outcomes[i].dropped = effects.dropped;
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
