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
// - These say nothing about membership itself (an active member or not): callers look that up.
#pragma once
#include "protocol/entry.h"

namespace kith::protocol {

// A relay stores and forwards a journal's entries but authors none of them.
bool mayAuthor(Role role);

// Whether an author of `role` may write a body of `kind`: JOURNAL_INFO (the title) is the owner's
// alone, an UPDATE the owner's and co-authors', a COMMENT or HEART any author's.
bool mayAuthorKind(Role role, Kind kind);

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
