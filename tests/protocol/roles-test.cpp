// The rules of protocol/roles.h, whole: every role against every kind, every control, and what
// `kith grant` and `kith invite` may hand out. The store's application of them on ingest is
// tests/store/roles-on-append-test.cpp.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "protocol/roles.h"

namespace {

using namespace kith::protocol;

const Role ROLES[] = {Role::SUBSCRIBER, Role::COAUTHOR, Role::OWNER, Role::RELAY};
const Kind KINDS[] = {Kind::UPDATE, Kind::COMMENT, Kind::HEART, Kind::JOURNAL_INFO};

}  // namespace

TEST_CASE("who may author which kind: the title is the owner's, updates the owner's and co-authors'",
          "[protocol][roles]") {
  // The table of specs/entry.md ("kind | who may author it"), as sets of roles per kind.
  const std::map<Kind, std::set<Role>> allowed = {
      {Kind::UPDATE, {Role::OWNER, Role::COAUTHOR}},
      {Kind::JOURNAL_INFO, {Role::OWNER}},
      {Kind::COMMENT, {Role::OWNER, Role::COAUTHOR, Role::SUBSCRIBER}},
      {Kind::HEART, {Role::OWNER, Role::COAUTHOR, Role::SUBSCRIBER}},
  };
  for (Kind kind : KINDS) {
    for (Role role : ROLES) {
      INFO(roleName(role) << " writing " << kindName(kind));
      CHECK(mayAuthorKind(role, kind) == allowed.at(kind).contains(role));
    }
  }
}

TEST_CASE("a relay authors nothing: no kind and no control", "[protocol][roles]") {
  CHECK_FALSE(mayAuthor(Role::RELAY));
  for (Role role : {Role::SUBSCRIBER, Role::COAUTHOR, Role::OWNER}) CHECK(mayAuthor(role));
  for (Kind kind : KINDS) CHECK_FALSE(mayAuthorKind(Role::RELAY, kind));
  for (auto type :
       {Control::Type::NONE, Control::Type::CREATE, Control::Type::ADD_MEMBER, Control::Type::REMOVE_MEMBER}) {
    CHECK_FALSE(mayIssue(Role::RELAY, type));
  }
}

TEST_CASE("only the owner adds and removes members; nobody creates a journal that exists", "[protocol][roles]") {
  for (Role role : ROLES) {
    INFO(roleName(role));
    bool owner = role == Role::OWNER;
    CHECK(mayIssue(role, Control::Type::ADD_MEMBER) == owner);
    CHECK(mayIssue(role, Control::Type::REMOVE_MEMBER) == owner);
    CHECK_FALSE(mayIssue(role, Control::Type::CREATE));
    CHECK(mayIssue(role, Control::Type::NONE) == (role != Role::RELAY));
  }
}

TEST_CASE("a journal has one owner: it is never added or removed, and relays get no keys", "[protocol][roles]") {
  for (Role role : ROLES) {
    INFO(roleName(role));
    CHECK(mayBeAdded(role) == (role != Role::OWNER));
    CHECK(mayBeRemoved(role) == (role != Role::OWNER));
    CHECK(receivesKeys(role) == (role != Role::RELAY));
  }
}

TEST_CASE("kith grant hands out subscriber, coauthor and relay; an invite only subscriber and coauthor",
          "[protocol][roles]") {
  std::set<std::string> grantable, invitable;
  for (Role role : ROLES) {
    if (isGrantable(role)) grantable.insert(roleName(role));
    if (isInvitable(role)) invitable.insert(roleName(role));
  }
  CHECK(grantable == std::set<std::string>{"subscriber", "coauthor", "relay"});
  CHECK(invitable == std::set<std::string>{"subscriber", "coauthor"});
  // A role value no build knows (from a peer's message) is neither.
  CHECK_FALSE(isInvitable(static_cast<Role>(7)));
  CHECK_FALSE(isGrantable(static_cast<Role>(7)));
}
