#include "protocol/roles.h"

#include <algorithm>

namespace kith::protocol {

bool mayAuthor(Role role) { return role != Role::RELAY; }

bool mayAuthorKind(Role role, Kind kind) {
  if (!mayAuthor(role)) return false;
  switch (kind) {
    case Kind::JOURNAL_INFO:
    case Kind::RELAYS:
      return role == Role::OWNER;
    case Kind::UPDATE:
    case Kind::ASK:
    case Kind::DONE:
    case Kind::CANCEL:
      return role == Role::OWNER || role == Role::COAUTHOR;
    case Kind::COMMENT:
    case Kind::HEART:
    case Kind::PROFILE:
    case Kind::WISH:
    case Kind::EDIT:
    case Kind::DELETE:
    case Kind::CLAIM:
    case Kind::UNCLAIM:
    case Kind::CHUNK:
      return true;
  }
  return false;
}

std::optional<BodyRefusal> refuseBody(Role role, const Body& body) {
  if (!mayAuthorKind(role, body.kind)) {
    return BodyRefusal{Rejection::UNAUTHORISED,
                       !mayAuthor(role)                  ? "a relay cannot author entries"
                       : body.kind == Kind::JOURNAL_INFO ? "only the owner sets the journal's title"
                       : body.kind == Kind::RELAYS       ? "only the owner sets the journal's relays"
                       : body.kind == Kind::UPDATE       ? "a subscriber cannot post updates"
                                                         : "a subscriber cannot ask for help or close a request"};
  }
  if (kindRefers(body.kind) && body.refs.empty()) {
    return BodyRefusal{Rejection::MALFORMED, "a comment, heart, edit, deletion or claim must refer to an entry"};
  }
  return std::nullopt;
}

std::optional<Tenure> tenureFor(const std::vector<Tenure>& tenures, uint64_t seq, uint32_t epoch, const char** why) {
  auto refuse = [why](const char* reason) -> std::optional<Tenure> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  uint64_t before = 0;  // the previous tenures' cut-off: this tenure's entries come after it
  for (const Tenure& t : tenures) {
    if (seq > before && (!t.lastSeq || seq <= *t.lastSeq)) {
      if (epoch < t.sinceEpoch) return refuse("the entry's epoch is earlier than its author's membership");
      return t;
    }
    // A cut-off never goes back (the owner's store keeps what it held); if one did, the seqs it
    // would give back stay with the earlier tenure.
    if (t.lastSeq) before = std::max(before, *t.lastSeq);
  }
  // Only the last tenure can be open, and an open one takes every seq after the cut-offs.
  if (tenures.empty()) return refuse("the author is not a member of the journal");
  return refuse("the author was removed from the journal and this entry is past its cut-off");
}

bool mayIssue(Role role, Control::Type type) {
  if (!mayAuthor(role)) return false;
  switch (type) {
    case Control::Type::NONE:
      return true;
    case Control::Type::CREATE:
      return false;
    case Control::Type::ADD_MEMBER:
    case Control::Type::REMOVE_MEMBER:
      return role == Role::OWNER;
  }
  return false;
}

bool mayBeAdded(Role role) { return role != Role::OWNER; }

bool mayBeRemoved(Role role) { return role != Role::OWNER; }

bool receivesKeys(Role role) { return role != Role::RELAY; }

bool isGrantable(Role role) { return role == Role::SUBSCRIBER || role == Role::COAUTHOR || role == Role::RELAY; }

bool isInvitable(Role role) { return role == Role::SUBSCRIBER || role == Role::COAUTHOR; }

}  // namespace kith::protocol
