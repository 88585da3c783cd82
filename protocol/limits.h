// The protocol layer's limits. Each one is enforced where input enters (decodeEntry, openBody,
// building an entry, decodeInvite) and documented in specs/entry.md and specs/invite.md; exceeding
// one is an input error.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kith::protocol {

// The entry format (specs/entry.md). Version 2 added the removal's cut-off (RemoveMember.lastSeq);
// a reader refuses every other version.
constexpr uint8_t ENTRY_VERSION = 2;

// The whole canonical Entry (clear fields, control and encrypted body).
constexpr size_t ENTRY_BYTES_MAX = 64 * 1024;
// The encrypted body, nonce and tag included.
constexpr size_t BODY_BYTES_MAX = 40 * 1024;
// The text of an update or comment, in UTF-8 bytes (about 5,000 words).
constexpr size_t TEXT_BYTES_MAX = 32 * 1024;
// References from one entry to others.
constexpr size_t REFS_MAX = 16;
// Relays a journal may name (Kind::RELAYS) and a relay's host name's length.
constexpr size_t RELAYS_MAX = 8;
constexpr size_t RELAY_HOST_BYTES_MAX = 253;
// A member's display name (Kind::PROFILE), in UTF-8 bytes.
constexpr size_t NAME_BYTES_MAX = 100;
// People one help request asks for (Kind::ASK).
constexpr uint16_t SLOTS_MAX = 100;
// Attachments (photos, files; specs/entry.md "Attachments"): the bytes of one chunk entry, one
// file, the files of one entry and the chunk ids one entry may name in all. A chunk's body stays
// under BODY_BYTES_MAX; the ids of ATTACHMENT_CHUNKS_MAX chunks take about 20 KiB of a body.
constexpr size_t CHUNK_BYTES_MAX = 32 * 1024;
constexpr uint64_t ATTACHMENT_BYTES_MAX = 8 * 1024 * 1024;
constexpr size_t ATTACHMENTS_MAX = 4;
constexpr size_t ATTACHMENT_CHUNKS_MAX = 512;
constexpr size_t ATTACHMENT_NAME_BYTES_MAX = 255;
constexpr size_t ATTACHMENT_MIME_BYTES_MAX = 64;
// Key wraps in one control entry (a removal re-wraps to every remaining member).
constexpr size_t WRAPS_MAX = 300;
// Members of one journal, relays included.
constexpr size_t MEMBERS_MAX = 256;
// Tenures of one key in one journal: its first ADD_MEMBER, then one for each time the owner adds it
// again after a removal. Every node must refuse the same re-add, so this is a protocol limit.
constexpr size_t MEMBER_TENURES_MAX = 32;
// Epochs (re-keyings) of one journal.
constexpr uint32_t EPOCHS_MAX = 100000;
// Entries per author per journal.
constexpr uint64_t SEQ_MAX = uint64_t{1} << 48;
// Nesting and traversal limits for reading untrusted Cap'n Proto data (in 8-byte words).
constexpr uint64_t READER_TRAVERSAL_WORDS_MAX = ENTRY_BYTES_MAX / 8 * 2;
constexpr int READER_NESTING_MAX = 16;

// Invite codes (protocol/invite.h, specs/invite.md). Addresses in one code.
constexpr size_t INVITE_ADDRESSES_MAX = 4;
// A DNS host name in a code: at most 253 bytes in all (the longest name DNS can carry), in labels
// of at most 63 bytes.
constexpr size_t INVITE_HOST_BYTES_MAX = 253;
constexpr size_t INVITE_HOST_LABEL_BYTES_MAX = 63;
// The longest code (four host names of INVITE_HOST_BYTES_MAX) has 2067 characters; the rest is
// room for the spaces and line breaks of a pasted code.
constexpr size_t INVITE_CODE_CHARS_MAX = 4096;

}  // namespace kith::protocol
