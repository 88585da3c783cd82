// Invite codes: what a journal's owner gives a friend, to paste or scan, so that the friend's node
// can reach the owner's node, authenticate it, and redeem a one-time secret for membership.
// specs/invite.md gives the byte layout.
//
// A code reads "kith-" then Crockford base32 in groups of five letters/digits: 106
// characters for one IPv4 address, short enough to read over the phone in groups. Decoding ignores
// case, spaces and dashes, reads o as 0 and i, l as 1, and checks a CRC-16 so that a typo (any one
// letter, or two neighbours swapped) gives "mistyped", not a failed connection.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "protocol/limits.h"

namespace kith::protocol {

constexpr uint8_t INVITE_VERSION = 1;
// A code whose addresses are a relay's (specs/relay.md, "Joining"): the relay's key follows them.
constexpr uint8_t INVITE_VERSION_RELAY = 2;
constexpr size_t INVITE_SECRET_BYTES = 10;  // 80 bits: single use, expiring

struct InviteAddress {
  std::string host;  // a numeric IPv4 or IPv6 address, or a host name (isInviteHostName)
  uint16_t port = 0;
};

struct InviteCode {
  crypto::PublicKey node{};              // the inviting node's identity (the journal's owner)
  Bytes secret;                          // INVITE_SECRET_BYTES
  std::vector<InviteAddress> addresses;  // the inviting node's, or (with `relay`) the relay's
  // Version 2: redeem through this relay (the inviting node need not be reachable).
  std::optional<crypto::PublicKey> relay;
};

// Throws Error(INPUT) for an address an invite cannot carry (inviteAddressProblem): whatever
// decodeInvite accepted encodes. Asserts INVITE_SECRET_BYTES of secret and 1 to
// INVITE_ADDRESSES_MAX addresses.
std::string encodeInvite(const InviteCode& code);
// Throws Error(INPUT) saying what is wrong (not a kith invite, mistyped, unsupported version).
// Whatever it accepts, encodeInvite encodes back to the same code (with the separators and case
// the encoder writes).
InviteCode decodeInvite(std::string_view text);

// Whether `host` may stand in an invite as a DNS name (specs/invite.md, "Host names"): 1 to
// INVITE_HOST_BYTES_MAX bytes; labels of 1 to INVITE_HOST_LABEL_BYTES_MAX ASCII letters, digits and
// hyphens, separated by single dots, none starting or ending with a hyphen; and a last label that is
// not all digits (such a name reads as a numeric address: "1.2.3.4", "2130706433").
bool isInviteHostName(std::string_view host);
// Why `address` cannot go in an invite ("the port is 0", ...), or nullopt when it can: a numeric
// IPv4 or IPv6 address or an isInviteHostName, and a port other than 0.
std::optional<std::string> inviteAddressProblem(const InviteAddress& address);

// The id under which the inviting node keeps an invite: BLAKE2b-256("kith/invite/v1", secret).
Key32 inviteId(ByteView secret);

}  // namespace kith::protocol
