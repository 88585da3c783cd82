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

namespace kith::protocol {

constexpr uint8_t INVITE_VERSION = 1;
constexpr size_t INVITE_SECRET_BYTES = 10;  // 80 bits: single use, expiring
constexpr size_t INVITE_ADDRESSES_MAX = 4;
constexpr size_t INVITE_HOST_BYTES_MAX = 253;
// The longest code (four host names of INVITE_HOST_BYTES_MAX) has 2067 characters; the rest is
// room for the spaces and line breaks of a pasted code.
constexpr size_t INVITE_CODE_CHARS_MAX = 4096;

struct InviteAddress {
  std::string host;  // a numeric IPv4 or IPv6 address, or a DNS name
  uint16_t port = 0;
};

struct InviteCode {
  crypto::PublicKey node{};  // the inviting node's identity (the journal's owner)
  Bytes secret;              // INVITE_SECRET_BYTES
  std::vector<InviteAddress> addresses;
};

std::string encodeInvite(const InviteCode& code);
// Throws Error(INPUT) saying what is wrong (not a kith invite, mistyped, unsupported version).
InviteCode decodeInvite(std::string_view text);

// The id under which the inviting node keeps an invite: BLAKE2b-256("kith/invite/v1", secret).
Key32 inviteId(ByteView secret);

}  // namespace kith::protocol
