// What stands between a browser and the household's journals (web/guard.h, specs/web-api.md):
// the Host and Origin checks that keep other sites and rebound names out, the session cookie's
// attributes, one-time sign-in tokens (kept as hashes in a 0600 file, used once, expiring), and the
// sessions kept in memory (expiring when unused, at most WEB_SESSIONS_MAX).
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/temp-dir.h"
#include "web/guard.h"
#include "web/limits.h"

namespace {

using namespace kith;
using namespace kith::web;
using kith::test::readFile;
using kith::test::TempDir;
using kith::test::writeFile;

constexpr uint16_t PORT = 7401;
constexpr int64_t T0 = 1'700'000'000'000;

bool isLowerHex64(const std::string& s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("a loopback page answers to 127.0.0.1, localhost and [::1] on its own port only", "[web][guard]") {
  auto allowed = allowedHosts("127.0.0.1", PORT);
  CHECK(hostAllowed("127.0.0.1:7401", allowed));
  CHECK(hostAllowed("localhost:7401", allowed));
  CHECK(hostAllowed("[::1]:7401", allowed));
  CHECK(hostAllowed("LocalHost:7401", allowed));  // host names are case-insensitive

  CHECK_FALSE(hostAllowed("evil.example:7401", allowed));  // DNS rebinding: a name of theirs
  CHECK_FALSE(hostAllowed("127.0.0.1:7402", allowed));
  CHECK_FALSE(hostAllowed("localhost:80", allowed));
  CHECK_FALSE(hostAllowed("", allowed));
  CHECK_FALSE(hostAllowed("127.0.0.1", allowed));  // no port
  CHECK_FALSE(hostAllowed("localhost", allowed));
  CHECK_FALSE(hostAllowed("127.0.0.1:7401.evil.example", allowed));
}

TEST_CASE("every loopback spelling of --web allows the same three names", "[web][guard]") {
  std::set<std::string> expected{"127.0.0.1:7401", "localhost:7401", "[::1]:7401"};
  for (const char* host : {"127.0.0.1", "localhost", "::1", "[::1]"}) {
    INFO(host);
    auto allowed = allowedHosts(host, PORT);
    CHECK(std::set<std::string>(allowed.begin(), allowed.end()) == expected);
  }
}

TEST_CASE("a page on another address answers to that address only", "[web][guard]") {
  auto allowed = allowedHosts("192.168.1.20", 8080);
  CHECK(hostAllowed("192.168.1.20:8080", allowed));
  CHECK_FALSE(hostAllowed("127.0.0.1:8080", allowed));
  CHECK_FALSE(hostAllowed("localhost:8080", allowed));

  auto named = allowedHosts("Kith.Home", 8080);
  CHECK(hostAllowed("kith.home:8080", named));
  CHECK(hostAllowed("KITH.HOME:8080", named));
  CHECK_FALSE(hostAllowed("kith.home.evil.example:8080", named));
}

TEST_CASE("a POST counts as ours only when Origin is http:// and the Host it was sent to", "[web][guard]") {
  CHECK(originAllowed("http://127.0.0.1:7401", "127.0.0.1:7401"));
  CHECK(originAllowed("http://LOCALHOST:7401", "localhost:7401"));

  CHECK_FALSE(originAllowed(std::nullopt, "127.0.0.1:7401"));  // missing: refused, not assumed ours
  CHECK_FALSE(originAllowed("null", "127.0.0.1:7401"));
  CHECK_FALSE(originAllowed("https://127.0.0.1:7401", "127.0.0.1:7401"));
  CHECK_FALSE(originAllowed("http://evil.example:7401", "127.0.0.1:7401"));
  CHECK_FALSE(originAllowed("http://localhost:7401", "127.0.0.1:7401"));  // another of our names
  CHECK_FALSE(originAllowed("http://127.0.0.1:7402", "127.0.0.1:7401"));
  CHECK_FALSE(originAllowed("http://127.0.0.1", "127.0.0.1:7401"));
  CHECK_FALSE(originAllowed("", "127.0.0.1:7401"));
}

TEST_CASE("the session cookie is read from among others, by its exact name", "[web][guard]") {
  CHECK(cookieValue("kith_session=abc", SESSION_COOKIE) == "abc");
  CHECK(cookieValue("theme=dark; kith_session=abc; lang=en", SESSION_COOKIE) == "abc");
  CHECK(cookieValue("theme=dark;kith_session=abc", SESSION_COOKIE) == "abc");
  CHECK(cookieValue("theme=dark;   kith_session=abc", SESSION_COOKIE) == "abc");
  CHECK(cookieValue("theme=dark", SESSION_COOKIE) == std::nullopt);
  CHECK(cookieValue("", SESSION_COOKIE) == std::nullopt);

  // A name that merely ends (or starts) with ours is another cookie.
  CHECK(cookieValue("evil_kith_session=forged", SESSION_COOKIE) == std::nullopt);
  CHECK(cookieValue("xkith_session=forged; kith_session=real", SESSION_COOKIE) == "real");
  CHECK(cookieValue("kith_session2=forged", SESSION_COOKIE) == std::nullopt);
  // A value that contains our name is not a cookie of that name.
  CHECK(cookieValue("other=kith_session=forged", SESSION_COOKIE) == std::nullopt);
}

TEST_CASE("the session cookie is HttpOnly, SameSite=Strict, for the whole site, and lasts the session's life",
          "[web][guard]") {
  std::string id(64, 'a');
  std::string c = sessionCookie(id, WEB_SESSION_TTL_MS);
  CHECK(c.rfind("kith_session=" + id + ";", 0) == 0);
  CHECK(c.find("; HttpOnly") != std::string::npos);
  CHECK(c.find("; SameSite=Strict") != std::string::npos);
  CHECK(c.find("; Path=/") != std::string::npos);
  CHECK(c.find("; Max-Age=43200") != std::string::npos);
  CHECK(c.find("Domain") == std::string::npos);
}

TEST_CASE("a sign-in token works once, within its time, and only itself", "[web][guard]") {
  TempDir home;
  LoginTokens tokens(home / "web-logins");
  std::string token = tokens.issue(T0);
  CHECK(isLowerHex64(token));

  std::string wrong = token;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  CHECK_FALSE(tokens.redeem(wrong, T0 + 1));
  CHECK_FALSE(tokens.redeem(token.substr(0, 63), T0 + 1));
  CHECK_FALSE(tokens.redeem("", T0 + 1));

  CHECK(tokens.redeem(token, T0 + 1));        // the wrong ones did not use it up
  CHECK_FALSE(tokens.redeem(token, T0 + 2));  // used once

  // Two outstanding tokens are independent.
  std::string a = tokens.issue(T0 + 10);
  std::string b = tokens.issue(T0 + 11);
  CHECK(a != b);
  CHECK(tokens.redeem(b, T0 + 12));
  CHECK(tokens.redeem(a, T0 + 13));
}

TEST_CASE("a sign-in token is refused once WEB_LOGIN_TTL_MS have passed", "[web][guard]") {
  TempDir home;
  LoginTokens tokens(home / "web-logins");
  std::string late = tokens.issue(T0);
  CHECK_FALSE(tokens.redeem(late, T0 + WEB_LOGIN_TTL_MS + 1));
  CHECK_FALSE(tokens.redeem(late, T0 + 1));  // gone from the file, not merely late

  TempDir other;
  LoginTokens edge(other / "web-logins");
  std::string last = edge.issue(T0);
  CHECK(edge.redeem(last, T0 + WEB_LOGIN_TTL_MS - 1));
}

TEST_CASE("HOME/web-logins holds hashes of the tokens, never the tokens, and only its user may read it",
          "[web][guard]") {
  TempDir home;
  std::string path = home / "web-logins";
  LoginTokens tokens(path);
  std::vector<std::string> issued;
  for (int i = 0; i < 3; ++i) issued.push_back(tokens.issue(T0 + i));

  std::string text = readFile(path);
  for (const auto& t : issued) {
    CHECK(text.find(t) == std::string::npos);
    CHECK(text.find(t.substr(0, 16)) == std::string::npos);
  }
  auto lines = linesOf(text);
  REQUIRE(lines.size() == issued.size());
  for (const auto& line : lines) {
    INFO(line);
    std::istringstream in(line);
    std::string hash;
    int64_t expires = 0;
    REQUIRE(in >> hash >> expires);
    CHECK(isLowerHex64(hash));
    CHECK(expires > T0);
    CHECK(expires <= T0 + 2 + WEB_LOGIN_TTL_MS);
  }

  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("a damaged HOME/web-logins counts as no tokens, and the next token makes it good", "[web][guard]") {
  TempDir home;
  std::string path = home / "web-logins";
  LoginTokens tokens(path);
  std::string token = tokens.issue(T0);

  std::string garbage;
  for (int i = 0; i < 300; ++i) garbage += static_cast<char>((i * 37 + 11) % 256);
  writeFile(path, garbage);
  bool redeemed = true;
  REQUIRE_NOTHROW(redeemed = tokens.redeem(token, T0 + 1));
  CHECK_FALSE(redeemed);

  // Too large to be ours: also no tokens, and no throw.
  writeFile(path, std::string(1024 * 1024, 'x'));
  REQUIRE_NOTHROW(redeemed = tokens.redeem(token, T0 + 1));
  CHECK_FALSE(redeemed);

  std::string fresh;
  REQUIRE_NOTHROW(fresh = tokens.issue(T0 + 2));
  CHECK(tokens.redeem(fresh, T0 + 3));
}

TEST_CASE("at most WEB_LOGINS_MAX tokens are kept: a new one drops the oldest", "[web][guard]") {
  TempDir home;
  std::string path = home / "web-logins";
  LoginTokens tokens(path);
  std::vector<std::string> issued;
  for (size_t i = 0; i < WEB_LOGINS_MAX + 1; ++i) issued.push_back(tokens.issue(T0 + static_cast<int64_t>(i)));
  CHECK(linesOf(readFile(path)).size() == WEB_LOGINS_MAX);

  const int64_t later = T0 + 100;
  CHECK_FALSE(tokens.redeem(issued.front(), later));  // the oldest was dropped
  CHECK(tokens.redeem(issued[1], later));
  CHECK(tokens.redeem(issued.back(), later));
}

TEST_CASE("a session is found until closed, and each find counts as a use", "[web][guard]") {
  Sessions sessions;
  std::string id = sessions.open(T0);
  CHECK(sessions.size() == 1);
  const Sessions::Session* s = sessions.find(id, T0 + 1);
  REQUIRE(s != nullptr);
  CHECK(s->lastUsedMs == T0 + 1);
  std::string csrf = s->csrf;

  std::string wrong = id;
  wrong[5] = wrong[5] == 'a' ? 'b' : 'a';
  CHECK(sessions.find(wrong, T0 + 2) == nullptr);
  CHECK(sessions.find(id.substr(0, 32), T0 + 2) == nullptr);
  CHECK(sessions.find("", T0 + 2) == nullptr);

  // The same session answers again, with the same CSRF token.
  s = sessions.find(id, T0 + 3);
  REQUIRE(s != nullptr);
  CHECK(s->csrf == csrf);

  sessions.close(wrong);
  CHECK(sessions.find(id, T0 + 4) != nullptr);
  sessions.close(id);
  CHECK(sessions.find(id, T0 + 5) == nullptr);
  CHECK(sessions.size() == 0);
}

TEST_CASE("a session ends after WEB_SESSION_TTL_MS without use, and each use extends it", "[web][guard]") {
  Sessions sessions;
  std::string kept = sessions.open(T0);
  std::string idle = sessions.open(T0);
  // Used just within its life, over and over: it lives far past one TTL from its opening.
  int64_t t = T0;
  for (int i = 0; i < 3; ++i) {
    t += WEB_SESSION_TTL_MS - 1;
    REQUIRE(sessions.find(kept, t) != nullptr);
  }
  CHECK(sessions.find(idle, t) == nullptr);
  CHECK(sessions.find(kept, t + WEB_SESSION_TTL_MS + 1) == nullptr);
  CHECK(sessions.size() == 0);
}

TEST_CASE("at most WEB_SESSIONS_MAX sessions: a new one ends the least recently used", "[web][guard]") {
  Sessions sessions;
  std::vector<std::string> ids;
  for (size_t i = 0; i < WEB_SESSIONS_MAX; ++i) ids.push_back(sessions.open(T0 + static_cast<int64_t>(i)));
  CHECK(sessions.size() == WEB_SESSIONS_MAX);
  // The first opened is used now: the second is the least recently used.
  REQUIRE(sessions.find(ids[0], T0 + 1000) != nullptr);

  std::string newest = sessions.open(T0 + 1001);
  CHECK(sessions.size() == WEB_SESSIONS_MAX);
  CHECK(sessions.find(newest, T0 + 1002) != nullptr);
  CHECK(sessions.find(ids[0], T0 + 1002) != nullptr);
  CHECK(sessions.find(ids[1], T0 + 1002) == nullptr);
  for (size_t i = 2; i < ids.size(); ++i) CHECK(sessions.find(ids[i], T0 + 1002) != nullptr);
}

TEST_CASE("session ids and CSRF tokens are 64 hex characters, each its own", "[web][guard]") {
  Sessions sessions;
  std::set<std::string> seen;
  for (int i = 0; i < 8; ++i) {
    std::string id = sessions.open(T0);
    const Sessions::Session* s = sessions.find(id, T0);
    REQUIRE(s != nullptr);
    CHECK(isLowerHex64(id));
    CHECK(isLowerHex64(s->csrf));
    CHECK(id != s->csrf);
    CHECK(seen.insert(id).second);
    CHECK(seen.insert(s->csrf).second);
  }
}

TEST_CASE("constant-time equality is equality", "[web][guard]") {
  CHECK(equalsConstantTime("abc", "abc"));
  CHECK(equalsConstantTime("", ""));
  CHECK_FALSE(equalsConstantTime("abc", "abd"));
  CHECK_FALSE(equalsConstantTime("abc", "abcd"));
  CHECK_FALSE(equalsConstantTime("", "a"));
}

TEST_CASE("JSON nesting deeper than allowed is refused before parsing, brackets in strings do not count",
          "[web][guard]") {
  CHECK(jsonDepthWithin(R"({"text": "hello", "photos": [{"name": "a.png", "data": "AAAA"}]})", 3));
  CHECK_FALSE(jsonDepthWithin(R"({"photos": [{"name": "a.png"}]})", 2));
  CHECK(jsonDepthWithin(R"({"text": "[[[[{{{{ \" [[[["})", 1));
  std::string deep(100000, '[');
  CHECK_FALSE(jsonDepthWithin(deep, WEB_JSON_DEPTH_MAX));
  CHECK(
      jsonDepthWithin(std::string(WEB_JSON_DEPTH_MAX, '[') + std::string(WEB_JSON_DEPTH_MAX, ']'), WEB_JSON_DEPTH_MAX));
  CHECK_FALSE(jsonDepthWithin(std::string(WEB_JSON_DEPTH_MAX + 1, '{'), WEB_JSON_DEPTH_MAX));
}
