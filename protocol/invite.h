// Invite codes: what a journal's owner gives a friend, to paste or scan, so that the friend's node
// can reach the owner's node, authenticate it, and redeem a one-time secret for membership.
// specs/invite.md gives the byte layout.
//
// A code reads "kith-" then Crockford base32 in groups of five letters/digits: 106
// characters for one IPv4 address, short enough to read over the phone in groups. Decoding ignores
// case, spaces and dashes, reads o as 0 and i, l as 1, and checks a CRC-16 so that a typo (any one
// letter, or two neighbours swapped) gives "mistyped", not a failed connection.
//
// A short code ("xxxx-xxxx-xxxx-xxxx-xxxx": 24 characters with its dashes) is what a grandparent
// can read over the phone: an IPv4 address, a port, the invite's slot on the inviting node and a
// 32-bit password, with a CRC-8. It carries no key: the friend's node authenticates the inviting
// node by running CPace with the password (crypto/cpace.h, specs/invite.md "Short codes"), and the
// node burns the invite after INVITE_SHORT_TRIES_MAX wrong guesses. Both forms are accepted by
// `kith accept`; isShortInviteText tells them apart.
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

// Short codes (specs/invite.md, "Short codes").
constexpr size_t INVITE_SHORT_PASSWORD_BYTES = 4;  // 32 bits, against INVITE_SHORT_TRIES_MAX guesses
// Bytes: IPv4 (4), port (2), slot (1), password, CRC-8 (1); 96 bits in 20 letters (4 zero bits).
constexpr size_t INVITE_SHORT_BYTES = 4 + 2 + 1 + INVITE_SHORT_PASSWORD_BYTES + 1;
constexpr size_t INVITE_SHORT_SYMBOLS = 20;
constexpr size_t INVITE_SHORT_GROUP_CHARS = 4;
constexpr size_t INVITE_SHORT_CHARS = INVITE_SHORT_SYMBOLS + INVITE_SHORT_SYMBOLS / INVITE_SHORT_GROUP_CHARS - 1;
static_assert(INVITE_SHORT_BYTES * 8 <= INVITE_SHORT_SYMBOLS * 5 &&
              INVITE_SHORT_BYTES * 8 + 5 > INVITE_SHORT_SYMBOLS * 5);
static_assert(INVITE_SHORT_CHARS <= 24, "a short code is at most 24 characters with its dashes");
// Wrong guesses (CPace runs whose key confirmation failed) after which the node burns an invite.
constexpr uint8_t INVITE_SHORT_TRIES_MAX = 3;
// Slots: an open short invite's number on its node, 0 to 255.
constexpr size_t INVITE_SHORT_SLOTS = 256;

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

struct ShortInviteCode {
  std::string host;  // a numeric IPv4 address
  uint16_t port = 0;
  uint8_t slot = 0;
  Bytes password;  // INVITE_SHORT_PASSWORD_BYTES
};

// "xxxx-xxxx-xxxx-xxxx-xxxx" in lower-case Crockford base32. Throws Error(INPUT) when the host is
// not a numeric IPv4 address or the port is 0 (an invite with a host name or IPv6 gets a long code
// only). Asserts INVITE_SHORT_PASSWORD_BYTES of password.
std::string encodeShortInvite(const ShortInviteCode& code);
// Whether `text` is meant as a short code: INVITE_SHORT_SYMBOLS letters once separators (spaces,
// dashes) are removed. A long code has over 80; anything else goes to decodeInvite, whose error
// says what is wrong.
bool isShortInviteText(std::string_view text);
// Decodes as leniently as decodeInvite (case, separators, o/0, i/l/1); throws Error(INPUT)
// "mistyped" for a wrong letter, a failed check or padding bits set, or port 0 or address 0.0.0.0.
ShortInviteCode decodeShortInvite(std::string_view text);

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
