// What an author does to a journal, on top of the Store: create it, post to it, add members, and
// read it back decrypted. Each write builds, encrypts and signs the author's next entry inside the
// store's write transaction (Store::appendNext), so concurrent writers never race for a seq.
//
// Threading: as Store.
// Caveats:
// - The author's identity and the at-rest key come in a Keyring; epoch keys are taken from the
//   store (sealed at rest) and never leave guarded memory except into libsodium calls.
// - Errors: Error(NOT_FOUND) for an unknown journal or a missing epoch key, Error(AUTH) when the
//   author's role does not allow the action, EntryError(TOO_LARGE) over the limits.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "store/store.h"

namespace kith::store {

using protocol::Body;
using protocol::Kind;

// Creates a journal owned by the keyring's identity, with its title in the first (encrypted)
// entry and a fresh epoch-0 key wrapped to the owner. Returns the journal's id.
JournalId createJournal(Store& store, const Keyring& keyring, const std::string& title);

// Posts an update, comment or heart under the journal's current epoch key.
Entry post(Store& store, const Keyring& keyring, const JournalId& journal, const Body& body);

// The owner adds a member: every epoch key so far is wrapped to the member (none for a relay).
Entry addMember(Store& store, const Keyring& keyring, const JournalId& journal, const PublicKey& member,
                protocol::Role role);

// The owner removes a member and starts a new epoch whose key is wrapped to everyone remaining.
Entry removeMember(Store& store, const Keyring& keyring, const JournalId& journal, const PublicKey& member);

struct ReadEntry {
  Entry entry;
  std::optional<Body> body;  // nullopt when this node holds no key for the entry's epoch
};

// Every entry of the journal in timeline order, with its body decrypted where a key is held (a
// file piece's `data` left out: readAttachment reads those). An
// entry its author had no right to write (no tenure covers it, or its kind is not one the
// author's role then allowed: protocol/roles.h) is never returned.
// Throws Error(CORRUPT) rather than return a partial timeline when the timeline index holds
// another number of rows than the journal record counts entries. An entry whose stored bytes fail
// to decode or verify is skipped and named in `skipped`; without `skipped` it throws Error(CORRUPT).
std::vector<ReadEntry> readJournal(const Store& store, const Keyring& keyring, const JournalId& journal,
                                   std::vector<DamagedEntry>* skipped = nullptr);

// The journal's title (from its first JOURNAL_INFO entry), when readable here (not when that
// entry is damaged).
std::optional<std::string> journalTitle(const Store& store, const Keyring& keyring, const JournalId& journal);

// The relays a journal uses, as the owner's latest RELAYS entry names them (specs/relay.md). The
// scan is incremental: `scan` remembers how far the owner's chain was read, so that a node that
// looks after every store change reads only the owner's new entries.
struct RelaysScan {
  uint64_t ownerSeq = 0;  // the owner's entries up to this seq have been looked at
  std::vector<protocol::RelayAddress> relays;
};
// Reads the owner's entries after scan.ownerSeq; returns true when the list changed. Entries this
// node cannot decrypt (no key for their epoch) are passed over.
bool scanRelays(const Store& store, const Keyring& keyring, const JournalId& journal, RelaysScan& scan);
// The owner sets the journal's relays (the whole list; empty: none).
Entry setRelays(Store& store, const Keyring& keyring, const JournalId& journal,
                const std::vector<protocol::RelayAddress>& relays);

}  // namespace kith::store
