// Who may do what in a journal: the one home of the rules that tie a member's role to the entries
// it may author, the control entries it may issue, and the roles a journal's owner may hand out.
// The store applies them on append (store/append.cpp), store/journal.cpp before it builds an
// entry, the CLI before `kith grant` and `kith invite`, and the node when it redeems an invite.
// specs/entry.md is the normative description.
//
// Threading: pure functions over values; safe from any thread.
// Caveats:
// - The kind of an entry is inside its encrypted body: only a node that holds the epoch's key can
//   apply mayAuthorKind (a relay checks what is in the clear: membership, chain, epoch).
// - mayAuthor* and mayIssue say nothing about membership itself (an active member or not): callers
//   look that up. tenureFor is the membership rule, over the tenures the store derived from the
//   owner's control entries.
#pragma once
#include <optional>
#include <vector>

#include "protocol/entry.h"

namespace kith::protocol {

// A relay stores and forwards a journal's entries but authors none of them.
bool mayAuthor(Role role);

// Whether an author of `role` may write a body of `kind`: JOURNAL_INFO (the title) and RELAYS are
// the owner's alone; UPDATE, ASK, DONE and CANCEL the owner's and co-authors'; every other kind
// (comments, hearts, names, wishes, edits and deletions of one's own entries, claims, file pieces)
// any author's. Whose entry an edit or deletion may touch is a rule of reading (store/timeline.h).
bool mayAuthorKind(Role role, Kind kind);

// Why an author of `role` may not have written `body`, or nullopt when it may: a kind the role does
// not allow (UNAUTHORISED), a comment or heart that refers to nothing (MALFORMED). Applied on append
// where the epoch key is held, again when the key arrives later, and by readJournal before it
// shows an entry.
struct BodyRefusal {
  Rejection reason = Rejection::UNAUTHORISED;
  const char* message = "";
};
std::optional<BodyRefusal> refuseBody(Role role, const Body& body);

// One stretch of a key's membership of a journal: from the owner's ADD_MEMBER (or the genesis, for
// the owner) to its REMOVE_MEMBER. Its entries are the key's seqs after the previous tenure's
// cut-off, up to its own cut-off (`lastSeq`, from the removal) or without end while it is open.
struct Tenure {
  Role role = Role::SUBSCRIBER;
  uint32_t sinceEpoch = 0;          // the journal's epoch when the ADD_MEMBER took effect
  std::optional<uint64_t> lastSeq;  // the removal's cut-off; nullopt while the member is active
};

// The tenure an author's entry at `seq` belongs to, and whether the entry may stand in it:
// nullopt (`why` says why) when the seq is past the last closed tenure's cut-off (the author was
// removed), or the entry's epoch is earlier than the tenure's first (written before the
// author was added, or added again). `tenures` in order, as the store keeps them. specs/entry.md,
// "Removal and the cut-off".
std::optional<Tenure> tenureFor(const std::vector<Tenure>& tenures, uint64_t seq, uint32_t epoch,
                                const char** why = nullptr);
// Whether an author of `role` may issue a control entry of `type`: adding and removing members is
// the owner's alone; CREATE is the genesis, which the journal's state cannot authorise (the store
// checks it against the journal id instead); NONE carries no control.
bool mayIssue(Role role, Control::Type type);

// Whether a member of `role` may be added by an ADD_MEMBER entry (a journal has one owner).
bool mayBeAdded(Role role);
// Whether a member of `role` may be removed (never the owner).
bool mayBeRemoved(Role role);
// Whether epoch keys are wrapped to a member of `role` (not to a relay, which reads nothing).
bool receivesKeys(Role role);

// The roles `kith grant` hands out: subscriber, coauthor, relay.
bool isGrantable(Role role);
// The roles an invitation may carry (`kith invite`, and what a redeemed invite may return):
// subscriber, coauthor.
bool isInvitable(Role role);

}  // namespace kith::protocol
