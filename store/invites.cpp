// Invitations (store/invites.h): one record per invite on the inviting node, and their one-step
// redemption.
#include "store/store-impl.h"

namespace kith::store {

using namespace internal;

namespace {

// The invite with this id and its status at `nowMs`, read inside `txn`.
std::pair<InviteStatus, std::optional<Invite>> inviteIn(const Table& invites, const Txn& txn, const Key32& id,
                                                        int64_t nowMs) {
  auto v = invites.get(txn, id);
  if (!v) return {InviteStatus::UNKNOWN, std::nullopt};
  Invite i = decodeInvite(id, *v);
  if (i.used) return {InviteStatus::USED, i};
  if (i.burnt()) return {InviteStatus::BURNT, i};
  if (nowMs >= i.expiresMs) return {InviteStatus::EXPIRED, i};
  return {InviteStatus::OPEN, i};
}

// A used invite keeps no short-code password or long-code secret.
void forgetShortSecrets(Invite& i) {
  std::fill(i.password.begin(), i.password.end(), 0);
  std::fill(i.secret.begin(), i.secret.end(), 0);
}

}  // namespace

const char* inviteStatusText(InviteStatus status) {
  switch (status) {
    case InviteStatus::OPEN:
      return "open";
    case InviteStatus::UNKNOWN:
      return "this invite is not known here (cancelled, mistyped or forged)";
    case InviteStatus::USED:
      return "this invite was already used";
    case InviteStatus::EXPIRED:
      return "this invite has expired";
    case InviteStatus::BURNT:
      return "this invite was burnt after too many wrong codes";
  }
  return "unknown";
}

void Store::putInvite(const Invite& invite) {
  impl_->write([&](WriteTxn& txn) { impl_->invites.put(txn, invite.id, encodeInvite(invite)); });
}

std::vector<Invite> Store::invites() const {
  ReadTxn txn(impl_->env);
  std::vector<Invite> out;
  impl_->invites.scan(txn, {}, [&](ByteView k, ByteView v) {
    out.push_back(decodeInvite(k, v));
    return true;
  });
  return out;
}

bool Store::cancelInvite(const Key32& id) {
  bool removed = false;
  impl_->write([&](WriteTxn& txn) { removed = impl_->invites.del(txn, id); });
  return removed;
}

std::pair<InviteStatus, std::optional<Invite>> Store::checkInvite(const Key32& id, int64_t nowMs) const {
  ReadTxn txn(impl_->env);
  return inviteIn(impl_->invites, txn, id, nowMs);
}

void Store::markInviteUsed(const Key32& id, const PublicKey& by) {
  impl_->write([&](WriteTxn& txn) {
    auto v = impl_->invites.get(txn, id);
    if (!v) return;
    Invite i = decodeInvite(id, *v);
    i.used = true;
    i.usedBy = by;
    forgetShortSecrets(i);
    impl_->invites.put(txn, id, encodeInvite(i));
  });
}

bool Store::hasOpenInvites(int64_t nowMs) const {
  for (const auto& i : invites()) {
    if (!i.used && !i.burnt() && nowMs < i.expiresMs) return true;
  }
  return false;
}

std::pair<InviteStatus, std::optional<Invite>> Store::checkShortInvite(uint8_t slot, int64_t nowMs) const {
  ReadTxn txn(impl_->env);
  std::optional<Key32> found;
  // Open invites are few (one per friend being invited); a scan is cheaper than an index to keep.
  impl_->invites.scan(txn, {}, [&](ByteView k, ByteView v) {
    Invite i = decodeInvite(k, v);
    if (!i.hasShort || i.slot != slot) return true;
    found = i.id;
    // An invite still open wins over an older one that had the same slot.
    return inviteIn(impl_->invites, txn, i.id, nowMs).first != InviteStatus::OPEN;
  });
  if (!found) return {InviteStatus::UNKNOWN, std::nullopt};
  return inviteIn(impl_->invites, txn, *found, nowMs);
}

std::optional<uint8_t> Store::countShortTry(const Key32& id, int64_t nowMs) {
  std::optional<uint8_t> out;
  impl_->write([&](WriteTxn& txn) {
    out.reset();
    auto [status, invite] = inviteIn(impl_->invites, txn, id, nowMs);
    if (status != InviteStatus::OPEN || !invite->hasShort) return;
    // The try in flight counts: at the limit the invite reads as burnt (and refuses further
    // tries) until this one proves the password and is forgiven.
    invite->shortFailures = static_cast<uint8_t>(invite->shortFailures + 1);
    impl_->invites.put(txn, id, encodeInvite(*invite));
    out = invite->shortFailures;
  });
  return out;
}

void Store::forgiveShortTry(const Key32& id) {
  impl_->write([&](WriteTxn& txn) {
    auto v = impl_->invites.get(txn, id);
    if (!v) return;
    Invite i = decodeInvite(id, *v);
    if (!i.hasShort || i.shortFailures == 0) return;
    i.shortFailures = static_cast<uint8_t>(i.shortFailures - 1);
    impl_->invites.put(txn, id, encodeInvite(i));
  });
}

Redemption Store::redeemInvite(const Key32& id, const PublicKey& peer, int64_t nowMs, const Keyring& keyring) {
  Redemption out;
  impl_->keyCache.clear();
  try {
    impl_->write([&](WriteTxn& txn) {
      out = {};
      // Named, not a structured binding: the lambda below captures it (clang 14 cannot).
      auto checked = inviteIn(impl_->invites, txn, id, nowMs);
      const InviteStatus status = checked.first;
      const std::optional<Invite> invite = checked.second;
      out.status = status;
      out.invite = invite;
      if (status != InviteStatus::OPEN) return;  // nothing written: the transaction commits empty
      auto existing = impl_->memberRecord(txn, invite->journal, peer);
      if (!existing || !existing->active) {
        out.added = impl_->appendNextIn(
            txn, invite->journal, keyring.identity.publicKey(),
            [&](AppendView& view) { return addMemberEntry(view, keyring, invite->journal, peer, invite->role); },
            &keyring);
      }
      Invite used = *invite;
      used.used = true;
      used.usedBy = peer;
      forgetShortSecrets(used);
      impl_->invites.put(txn, id, encodeInvite(used));
    });
  } catch (...) {
    impl_->keyCache.clear();
    throw;
  }
  impl_->keyCache.clear();
  return out;
}

}  // namespace kith::store
