#include "protocol/roles.h"

namespace kith::protocol {

bool mayAuthor(Role role) { return role != Role::RELAY; }

bool mayAuthorKind(Role role, Kind kind) {
  if (!mayAuthor(role)) return false;
  switch (kind) {
    case Kind::JOURNAL_INFO:
      return role == Role::OWNER;
    case Kind::UPDATE:
      return role == Role::OWNER || role == Role::COAUTHOR;
    case Kind::COMMENT:
    case Kind::HEART:
      return true;
  }
  return false;
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
