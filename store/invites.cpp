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
  if (nowMs >= i.expiresMs) return {InviteStatus::EXPIRED, i};
  return {InviteStatus::OPEN, i};
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
    impl_->invites.put(txn, id, encodeInvite(i));
  });
}

bool Store::hasOpenInvites(int64_t nowMs) const {
  for (const auto& i : invites()) {
    if (!i.used && nowMs < i.expiresMs) return true;
  }
  return false;
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
