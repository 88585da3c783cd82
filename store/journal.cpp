#include "store/journal.h"

#include <algorithm>
#include <chrono>

#include <sodium.h>

#include "protocol/roles.h"
#include "store/store-impl.h"

namespace kith::store {

using protocol::Control;
using protocol::EntryDraft;
using protocol::KeyWrap;
using protocol::Role;

namespace {

Error notFound(const JournalId& journal) {
  return Error(ErrorKind::NOT_FOUND, "journal " + toHex(journal).substr(0, 16) + " is not in this home",
               "see 'kith journal list'");
}

EntryDraft nextDraft(const JournalId& journal, const std::optional<Head>& head, uint32_t epoch) {
  EntryDraft d;
  d.journal = journal;
  d.seq = head ? head->seq + 1 : 1;
  if (head) d.prev = head->id;
  d.timestampMs = nowMs();
  d.epoch = epoch;
  return d;
}

// The key of the journal's current epoch, which an author needs to post.
const crypto::SecretBuffer& requireEpochKey(AppendView& view, uint32_t epoch) {
  const crypto::SecretBuffer* key = view.epochKey(epoch);
  if (key == nullptr) {
    throw Error(ErrorKind::NOT_FOUND, "this node holds no key for the journal's current epoch",
                "ask the journal's owner to add you again");
  }
  return *key;
}

KeyWrap wrapTo(const PublicKey& member, uint32_t epoch, ByteView key) {
  auto boxKey = crypto::toBoxPublicKey(member);
  if (!boxKey) throw Error(ErrorKind::INPUT, "the member's public key is not a valid Ed25519 key");
  return KeyWrap{member, epoch, crypto::sealTo(*boxKey, key)};
}

// The journal's state, read in the transaction that appends: NOT_FOUND before its genesis.
const JournalInfo& requireJournal(const AppendView& view, const JournalId& journal) {
  if (!view.journal()) throw notFound(journal);
  return *view.journal();
}

// AUTH unless `who` is an active member whose role passes `allowed` (a rule of protocol/roles.h).
void requireRole(const AppendView& view, const PublicKey& who, bool (*allowed)(Role), const char* action) {
  auto m = view.member(who);
  if (m && m->active && allowed(m->role)) return;
  throw Error(ErrorKind::AUTH, std::string("your role in this journal does not allow you to ") + action,
              "ask the journal's owner");
}

bool mayAddMembers(Role role) { return protocol::mayIssue(role, Control::Type::ADD_MEMBER); }
bool mayRemoveMembers(Role role) { return protocol::mayIssue(role, Control::Type::REMOVE_MEMBER); }

}  // namespace

namespace internal {

MadeEntry addMemberEntry(AppendView& view, const Keyring& keyring, const JournalId& journal, const PublicKey& member,
                         Role role) {
  const JournalInfo& j = requireJournal(view, journal);
  requireRole(view, keyring.identity.publicKey(), mayAddMembers, "add members");
  if (auto m = view.member(member); m && m->active) {
    throw Error(ErrorKind::CONFLICT, "that key is already a member (" + std::string(protocol::roleName(m->role)) + ")",
                "see 'kith members'");
  }
  EntryDraft d = nextDraft(journal, view.head(), j.epoch);
  d.control.type = Control::Type::ADD_MEMBER;
  d.control.member = member;
  d.control.role = role;
  if (protocol::receivesKeys(role)) {
    for (uint32_t e = 0; e <= j.epoch; ++e) {
      // Epochs whose key this owner never held (none, in practice) are skipped.
      if (const crypto::SecretBuffer* key = view.epochKey(e)) d.control.wraps.push_back(wrapTo(member, e, key->view()));
    }
  }
  return {protocol::signEntry(keyring.identity, d, std::nullopt), nullptr};
}

}  // namespace internal

JournalId createJournal(Store& store, const Keyring& keyring, const std::string& title) {
  const auto& me = keyring.identity;
  Bytes salt(protocol::JOURNAL_SALT_BYTES);
  crypto::randomBytes(salt);
  JournalId journal = protocol::journalIdFor(me.publicKey(), salt);
  crypto::SecretBuffer epochKey(crypto::AEAD_KEY_BYTES);
  crypto::randomBytes({epochKey.data(), epochKey.size()});
  const Body info{Kind::JOURNAL_INFO, title, {}};
  store.appendNext(
      journal, me.publicKey(),
      [&](AppendView&) {
        EntryDraft d = nextDraft(journal, std::nullopt, 0);
        d.control.type = Control::Type::CREATE;
        d.control.salt = salt;
        d.control.wraps.push_back(wrapTo(me.publicKey(), 0, epochKey.view()));
        d.body = info;
        return MadeEntry{protocol::signEntry(me, d, epochKey.view()), &info};
      },
      &keyring);
  if (!store.epochKey(journal, 0, keyring.storageKey)) {
    throw Error(ErrorKind::IO, "the new journal's key was not stored");  // the wrap to ourselves failed
  }
  return journal;
}

Entry post(Store& store, const Keyring& keyring, const JournalId& journal, const Body& body) {
  const auto& me = keyring.identity;
  return store.appendNext(
      journal, me.publicKey(),
      [&](AppendView& view) {
        const JournalInfo& j = requireJournal(view, journal);
        auto mine = view.member(me.publicKey());
        // The role that judges the entry is its tenure's (protocol::tenureFor), by its seq: it must
        // be the current one (a seq under an earlier removal's cut-off is not ours to write now).
        uint64_t seq = view.head() ? view.head()->seq + 1 : 1;
        std::optional<protocol::Tenure> tenure;
        if (mine && mine->active) tenure = protocol::tenureFor(mine->tenures, seq, j.epoch);
        if (!tenure || tenure->lastSeq || !protocol::mayAuthorKind(tenure->role, body.kind)) {
          throw Error(ErrorKind::AUTH,
                      std::string("your role in this journal does not allow you to ") +
                          (body.kind == Kind::UPDATE                              ? "post updates"
                           : body.kind == Kind::JOURNAL_INFO                      ? "set the journal's title"
                           : body.kind == Kind::RELAYS                            ? "set the journal's relays"
                           : body.kind == Kind::ASK                               ? "ask for help"
                           : body.kind == Kind::DONE || body.kind == Kind::CANCEL ? "close a help request"
                                                                                  : "write here"),
                      "ask the journal's owner");
        }
        const crypto::SecretBuffer& key = requireEpochKey(view, j.epoch);
        EntryDraft d = nextDraft(journal, view.head(), j.epoch);
        d.body = body;
        return MadeEntry{protocol::signEntry(me, d, key.view()), &body};
      },
      &keyring);
}

Entry addMember(Store& store, const Keyring& keyring, const JournalId& journal, const PublicKey& member, Role role) {
  return store.appendNext(
      journal, keyring.identity.publicKey(),
      [&](AppendView& view) { return internal::addMemberEntry(view, keyring, journal, member, role); }, &keyring);
}

Entry removeMember(Store& store, const Keyring& keyring, const JournalId& journal, const PublicKey& member) {
  const auto& me = keyring.identity;
  crypto::SecretBuffer newKey(crypto::AEAD_KEY_BYTES);
  crypto::randomBytes({newKey.data(), newKey.size()});
  return store.appendNext(
      journal, me.publicKey(),
      [&](AppendView& view) {
        const JournalInfo& j = requireJournal(view, journal);
        requireRole(view, me.publicKey(), mayRemoveMembers, "remove members");
        auto target = view.member(member);
        if (!target || !target->active) {
          throw Error(ErrorKind::NOT_FOUND, "that key is not a member of the journal", "see 'kith members'");
        }
        if (!protocol::mayBeRemoved(target->role)) throw Error(ErrorKind::INPUT, "the owner cannot be removed");
        uint32_t epoch = j.epoch + 1;
        EntryDraft d = nextDraft(journal, view.head(), epoch);
        d.control.type = Control::Type::REMOVE_MEMBER;
        d.control.member = member;
        d.control.newEpoch = epoch;
        // The cut-off: the member's entries this store holds stand; any later ones are refused. It
        // never goes back past an earlier removal's (entries up to that one may still arrive).
        if (auto head = view.headOf(member)) d.control.lastSeq = head->seq;
        for (const auto& t : target->tenures) d.control.lastSeq = std::max(d.control.lastSeq, t.lastSeq.value_or(0));
        for (const Member& m : view.members()) {
          if (m.active && m.key != member && protocol::receivesKeys(m.role)) {
            d.control.wraps.push_back(wrapTo(m.key, epoch, newKey.view()));
          }
        }
        return MadeEntry{protocol::signEntry(me, d, std::nullopt), nullptr};
      },
      &keyring);
}

std::vector<ReadEntry> readJournal(const Store& store, const Keyring& keyring, const JournalId& journal,
                                   std::vector<DamagedEntry>* skipped) {
  if (!store.journal(journal)) throw notFound(journal);
  TimelineReport report;
  std::vector<Entry> timeline = store.timeline(journal, &report);
  // Rows and count come from one transaction, so a concurrent writer cannot make them differ.
  if (report.rows != report.expected) {
    throw Error(ErrorKind::CORRUPT,
                "journal " + toHex(journal).substr(0, 16) + " is damaged: its timeline index lists " +
                    std::to_string(report.rows) + " entries but the journal holds " + std::to_string(report.expected) +
                    ", so its timeline cannot be shown whole",
                HINT_RESTORE_STORE);
  }
  if (skipped != nullptr) {
    *skipped = std::move(report.skipped);
  } else if (!report.skipped.empty()) {
    const DamagedEntry& d = report.skipped.front();
    throw Error(ErrorKind::CORRUPT,
                "entry " + (d.id ? toHex(*d.id).substr(0, 12) : std::string("?")) + " of journal " +
                    toHex(journal).substr(0, 16) + " is damaged (" + d.reason + ")",
                HINT_RESTORE_STORE);
  }
  // Read after the timeline: member records are only ever added to, so every author of an entry
  // read above has one.
  std::map<PublicKey, Member> members;
  for (Member& m : store.members(journal)) members.emplace(m.key, std::move(m));
  std::vector<ReadEntry> out;
  std::map<uint32_t, std::optional<crypto::SecretBuffer>> keys;
  for (Entry& e : timeline) {
    // Never shown: an entry its author had no right to write (the store refuses and drops them;
    // this holds whatever the store holds).
    auto member = members.find(e.author);
    std::optional<protocol::Tenure> tenure;
    if (member != members.end()) tenure = protocol::tenureFor(member->second.tenures, e.seq, e.epoch);
    if (!tenure) continue;
    std::optional<Body> body;
    if (!e.body.empty()) {
      auto it = keys.find(e.epoch);
      if (it == keys.end()) it = keys.emplace(e.epoch, store.epochKey(journal, e.epoch, keyring.storageKey)).first;
      if (it->second) {
        try {
          body = protocol::openBody(e, it->second->view());
        } catch (const protocol::EntryError&) {
          // A member wrote a malformed body: the entry stays (it is signed and chained) but shows
          // as unreadable rather than stopping the whole read.
        }
      }
    }
    // The owner may write every kind, and its entries are not judged again when keys arrive
    // (specs/entry.md): a malformed body of the owner's still shows, as the store holds it.
    if (body && tenure->role != Role::OWNER && protocol::refuseBody(tenure->role, *body)) continue;
    // A file's pieces are read one file at a time (readAttachment), not held with the timeline.
    if (body && body->kind == Kind::CHUNK && !body->data.empty()) {
      sodium_memzero(body->data.data(), body->data.size());
      body->data.clear();
    }
    out.push_back({std::move(e), std::move(body)});
  }
  return out;
}

std::optional<std::string> journalTitle(const Store& store, const Keyring& keyring, const JournalId& journal) {
  auto info = store.journal(journal);
  if (!info) return std::nullopt;
  std::optional<Entry> genesis;
  try {
    genesis = store.entry(journal, info->owner, 1);
  } catch (const protocol::EntryError&) {
    return std::nullopt;  // damaged: 'kith check' names it, and the title shows as unreadable
  }
  if (!genesis) return std::nullopt;
  auto key = store.epochKey(journal, genesis->epoch, keyring.storageKey);
  if (!key) return std::nullopt;
  auto body = protocol::openBody(*genesis, key->view());
  if (!body || body->kind != Kind::JOURNAL_INFO) return std::nullopt;
  return body->text;
}

bool scanRelays(const Store& store, const Keyring& keyring, const JournalId& journal, RelaysScan& scan) {
  auto info = store.journal(journal);
  if (!info) return false;
  bool changed = false;
  std::optional<uint32_t> keyEpoch;
  std::optional<crypto::SecretBuffer> key;
  for (;;) {
    std::vector<Entry> batch = store.range(journal, info->owner, scan.ownerSeq + 1, 256);
    if (batch.empty()) break;
    for (const Entry& e : batch) {
      scan.ownerSeq = e.seq;
      if (e.body.empty()) continue;
      if (keyEpoch != e.epoch) {
        key = store.epochKey(journal, e.epoch, keyring.storageKey);
        keyEpoch = e.epoch;
      }
      if (!key) continue;
      std::optional<Body> body;
      try {
        body = protocol::openBody(e, key->view());
      } catch (const protocol::EntryError&) {
        continue;  // the owner's own malformed body: nothing to learn from it
      }
      if (!body || body->kind != Kind::RELAYS) continue;
      if (body->relays != scan.relays) {
        scan.relays = body->relays;
        changed = true;
      }
    }
  }
  return changed;
}

Entry setRelays(Store& store, const Keyring& keyring, const JournalId& journal,
                const std::vector<protocol::RelayAddress>& relays) {
  Body body{Kind::RELAYS, "", {}};
  body.relays = relays;
  return post(store, keyring, journal, body);
}

}  // namespace kith::store
