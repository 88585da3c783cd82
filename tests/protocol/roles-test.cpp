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

TEST_CASE("refuseBody: a kind the role does not allow is UNAUTHORISED and an answer to nothing MALFORMED",
          "[protocol][roles]") {
  EntryId some{};
  some[0] = 1;
  for (Role role : ROLES) {
    for (Kind kind : KINDS) {
      INFO(roleName(role) << " writing " << kindName(kind));
      bool answer = kind == Kind::COMMENT || kind == Kind::HEART;
      Body withRef{kind, "text", {some}};
      Body without{kind, "text", {}};
      auto refused = refuseBody(role, withRef);
      CHECK(refused.has_value() == !mayAuthorKind(role, kind));
      if (refused) CHECK(refused->reason == Rejection::UNAUTHORISED);
      auto bare = refuseBody(role, without);
      if (!mayAuthorKind(role, kind)) {
        CHECK(bare->reason == Rejection::UNAUTHORISED);
      } else if (answer) {
        REQUIRE(bare.has_value());
        CHECK(bare->reason == Rejection::MALFORMED);
      } else {
        CHECK_FALSE(bare.has_value());
      }
    }
  }
}

TEST_CASE("tenureFor: each entry belongs to the tenure its seq falls in and stands only from that tenure's epoch",
          "[protocol][roles]") {
  // Added in epoch 0 as a co-author, removed with cut-off 5 (epoch 1); added again in epoch 2 as a
  // subscriber, removed with cut-off 9; added again in epoch 4 as a co-author, still a member.
  const std::vector<Tenure> tenures = {
      {Role::COAUTHOR, 0, 5},
      {Role::SUBSCRIBER, 2, 9},
      {Role::COAUTHOR, 4, std::nullopt},
  };
  const char* why = nullptr;
  CHECK(tenureFor(tenures, 1, 0)->role == Role::COAUTHOR);
  CHECK(tenureFor(tenures, 5, 0)->role == Role::COAUTHOR);
  CHECK(tenureFor(tenures, 6, 2)->role == Role::SUBSCRIBER);
  CHECK(tenureFor(tenures, 9, 3)->role == Role::SUBSCRIBER);
  CHECK(tenureFor(tenures, 10, 4)->role == Role::COAUTHOR);
  CHECK(tenureFor(tenures, 1000, 9)->role == Role::COAUTHOR);
  // Past a cut-off, in an epoch before the tenure: written while removed.
  CHECK_FALSE(tenureFor(tenures, 6, 0, &why).has_value());
  CHECK(std::string(why).find("epoch") != std::string::npos);
  CHECK_FALSE(tenureFor(tenures, 10, 3).has_value());

  // Removed and not added again: nothing past the last cut-off, whatever its epoch.
  const std::vector<Tenure> removed = {{Role::SUBSCRIBER, 0, 3}};
  CHECK(tenureFor(removed, 3, 0).has_value());
  why = nullptr;
  CHECK_FALSE(tenureFor(removed, 4, 0, &why).has_value());
  CHECK(std::string(why).find("cut-off") != std::string::npos);
  CHECK_FALSE(tenureFor(removed, 4, 7).has_value());
  // Removed before writing anything (cut-off 0), then added again from epoch 1.
  const std::vector<Tenure> silent = {{Role::SUBSCRIBER, 0, 0}, {Role::COAUTHOR, 1, std::nullopt}};
  CHECK(tenureFor(silent, 1, 1)->role == Role::COAUTHOR);
  CHECK_FALSE(tenureFor(silent, 1, 0).has_value());
  // Never a member.
  why = nullptr;
  CHECK_FALSE(tenureFor({}, 1, 0, &why).has_value());
  CHECK(std::string(why).find("not a member") != std::string::npos);
}
