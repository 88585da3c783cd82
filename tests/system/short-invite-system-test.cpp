// Short invite codes with the real `kith` binary over loopback TCP: `kith invite` prints a code
// of at most 24 characters (with its id and label) for the address `kith serve` listens on; a
// friend joins with it quietly; wrong codes are refused and, after the allowed tries, the invite is
// burnt so that even the right code is refused, and `kith invite list` says so.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "protocol/invite.h"
#include "tests/support/kith-process.h"

namespace {

using kith::test::KithHome;
using kith::test::KithServe;
using nlohmann::json;

// `code` with its password changed but a valid check, so that the node (not the decoder) refuses it.
std::string wrongPassword(const std::string& code, uint8_t flip) {
  kith::protocol::ShortInviteCode decoded = kith::protocol::decodeShortInvite(code);
  decoded.password[0] = static_cast<uint8_t>(decoded.password[0] ^ flip);
  return kith::protocol::encodeShortInvite(decoded);
}

json inviteListed(const KithHome& owner, const std::string& id) {
  for (const auto& i : owner.kithJson({"invite", "list"})) {
    if (i.at("id") == id) return i;
  }
  FAIL("invite " << id << " is not listed");
  return {};
}

}  // namespace

TEST_CASE("a friend joins with a short code read over the phone, and the join is quiet", "[system][invite]") {
  KithHome owner("owner"), grandma("grandma");
  const std::string journal = owner.kithJson({"journal", "create", "Family news"}).at("id").get<std::string>();
  owner.kithOk({"post", "Hello from the owner"});
  KithServe node(owner);
  // No --address: the code carries the address serve listens on (its OS-chosen port).
  kith::test::RunResult made = owner.kithOk({"invite", "--label", "Aunt May"});
  std::string code = made.out.substr(0, made.out.find('\n'));
  INFO(made.out);
  REQUIRE(code.size() <= 24);
  REQUIRE(kith::protocol::isShortInviteText(code));
  CHECK(kith::protocol::decodeShortInvite(code).port == node.port());
  CHECK(made.out.find("Aunt May") != std::string::npos);
  json listed = owner.kithJson({"invite", "list"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].at("label") == "Aunt May");
  CHECK(made.out.find(listed[0].at("id").get<std::string>()) != std::string::npos);

  // Read out over the phone: upper case, spaces instead of dashes.
  std::string spoken;
  for (char c : code) spoken.push_back(c == '-' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  kith::test::RunResult joined = grandma.kithOk({"accept", spoken});
  INFO(joined.out << joined.err);
  CHECK(joined.out.find("Joined") != std::string::npos);
  size_t lines = 0;
  for (char c : joined.out + joined.err) lines += c == '\n';
  CHECK(lines <= 2);
  CHECK(joined.err.find("refused an entry") == std::string::npos);
  CHECK(joined.err.find("broken-chain") == std::string::npos);
  CHECK(grandma.kithJson({"read"}).dump().find("Hello from the owner") != std::string::npos);
  CHECK(inviteListed(owner, listed[0].at("id")).at("status").get<std::string>().rfind("used by", 0) == 0);
  (void)journal;
}

TEST_CASE("wrong short codes are refused and burn the invite after the allowed tries, the right one with it",
          "[system][invite]") {
  KithHome owner("owner"), guesser("guesser"), friendly("friend");
  owner.kithJson({"journal", "create", "Family news"});
  KithServe node(owner);
  json made = owner.kithJson({"invite", "--label", "Uncle Bob"});
  const std::string code = made.at("code").get<std::string>();
  const std::string id = made.at("id").get<std::string>();
  REQUIRE(made.at("short") == true);
  REQUIRE(code.size() <= 24);

  // A typo is caught before anything is dialled and costs no try.
  std::string typo = code;
  typo[0] = typo[0] == 'x' ? 'y' : 'x';
  std::string line = kith::test::requireError(guesser.kith({"accept", typo}));
  CHECK(line.find("mistyped") != std::string::npos);
  CHECK(inviteListed(owner, id).at("wrong_codes") == 0);

  for (uint8_t t = 1; t <= kith::protocol::INVITE_SHORT_TRIES_MAX; ++t) {
    line = kith::test::requireError(guesser.kith({"accept", wrongPassword(code, t)}));
    INFO(line);
    CHECK(line.find("not right") != std::string::npos);
    CHECK(kith::test::eventually(kith::test::READY_TIMEOUT_MS,
                                 [&] { return inviteListed(owner, id).at("wrong_codes") == t; }));
  }
  json burnt = inviteListed(owner, id);
  CHECK(burnt.at("status").get<std::string>().find("burnt") != std::string::npos);
  CHECK(burnt.at("label") == "Uncle Bob");
  line = kith::test::requireError(friendly.kith({"accept", code}));
  CHECK(line.find("burnt") != std::string::npos);
  // The long code of a burnt invite is dead too.
  line = kith::test::requireError(friendly.kith({"accept", made.at("long_code").get<std::string>()}));
  CHECK(owner.kithJson({"invite", "list"}).dump().find("used by") == std::string::npos);
  CHECK(owner.kith({"invite", "list"}).out.find("burnt") != std::string::npos);
}
