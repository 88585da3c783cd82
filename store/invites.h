// Invitations, the store's part: a one-time invitation to a journal, kept only on the inviting
// node and never replicated. The code a friend types is protocol/invite.h; this is what the owner's
// node remembers of it. The code's secret is never stored: an invite's `id` is
// BLAKE2b-256("kith/invite/v1", secret).
//
// The Store calls (store/invites.cpp): putInvite, invites, cancelInvite, checkInvite,
// markInviteUsed, hasOpenInvites, and redeemInvite, which checks the invite, adds the member and
// marks the invite used in one write transaction.
//
// Threading: values only.
#pragma once
#include <cstdint>
#include <optional>

#include "protocol/entry.h"

namespace kith::store {

struct Invite {
  Key32 id{};
  protocol::JournalId journal{};
  protocol::Role role = protocol::Role::SUBSCRIBER;
  int64_t createdMs = 0;
  int64_t expiresMs = 0;
  bool used = false;
  protocol::PublicKey usedBy{};
};

enum class InviteStatus { OPEN, UNKNOWN, USED, EXPIRED };
const char* inviteStatusText(InviteStatus status);

// What Store::redeemInvite did: `status` is the invite's status before (OPEN when it was
// redeemed), `invite` the record when there is one, `added` the ADD_MEMBER entry appended (nullopt
// when the peer was an active member already, or the invite was not open).
struct Redemption {
  InviteStatus status = InviteStatus::UNKNOWN;
  std::optional<Invite> invite;
  std::optional<protocol::Entry> added;
};

}  // namespace kith::store
