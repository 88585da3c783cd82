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
#include "protocol/invite.h"

namespace kith::store {

// The owner's note of whom an invite is for (`kith invite --label "Aunt May"`), in UTF-8 bytes.
constexpr size_t INVITE_LABEL_BYTES_MAX = 64;

struct Invite {
  Key32 id{};
  protocol::JournalId journal{};
  protocol::Role role = protocol::Role::SUBSCRIBER;
  int64_t createdMs = 0;
  int64_t expiresMs = 0;
  bool used = false;
  protocol::PublicKey usedBy{};
  std::string label;  // at most INVITE_LABEL_BYTES_MAX bytes; empty when none was given
  // A short code (protocol/invite.h) was made for it: its slot, password, the long code's secret
  // (revealed to a friend that proved the password) and the wrong guesses so far. The password
  // and secret are kept until the invite is used (then zeroed); the invite is burnt once
  // shortFailures reaches protocol::INVITE_SHORT_TRIES_MAX.
  bool hasShort = false;
  uint8_t slot = 0;
  Bytes password;  // protocol::INVITE_SHORT_PASSWORD_BYTES
  Bytes secret;    // protocol::INVITE_SECRET_BYTES
  uint8_t shortFailures = 0;

  bool burnt() const { return hasShort && shortFailures >= protocol::INVITE_SHORT_TRIES_MAX; }
};

// BURNT: too many wrong short-code guesses; neither code works any more.
enum class InviteStatus { OPEN, UNKNOWN, USED, EXPIRED, BURNT };
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
