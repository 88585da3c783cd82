// The household's page server (web/server.h) over real TCP on loopback, spoken to in raw HTTP/1.1:
// the security headers every answer carries, the Host check against DNS rebinding, signing in
// with a one-time token from HOME/web-logins, the Origin and CSRF checks on writes, the body
// limit, the embedded assets (and nothing else), and a post written through the API read back
// from the timeline. specs/web-api.md is the contract.
#include <map>
#include <memory>
#include <string>

#include <spdlog/logger.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "crypto/keys.h"
#include "store/journal.h"
#include "store/store.h"
#include "tests/node/node-fixture.h"
#include "tests/support/temp-dir.h"
#include "web/guard.h"
#include "web/limits.h"
#include "web/server.h"

namespace {

using namespace kith;
using kith::node::UvIoContext;
using kith::node::UvStream;
using kith::node::test::CaptureSink;
using kith::node::test::waitWithin;
using kith::test::TempDir;
using nlohmann::json;

// As specs/web-api.md gives it (its two lines joined by one space).
const std::string CSP =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

struct HttpAnswer {
  std::string statusLine;
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool has(const std::string& name) const { return headers.count(name) > 0; }
  json bodyJson() const { return json::parse(body, nullptr, false); }
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool isLowerHex64(const std::string& s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A real store with one journal, a loop, and the page server on 127.0.0.1 at a port the OS chose.
// Members are destroyed in reverse: the server first, the store next, the loop last.
struct WebFixture {
  UvIoContext io;
  TempDir home;
  crypto::Identity identity = crypto::Identity::generate();
  crypto::SecretBuffer storageKey = identity.deriveKey("kithstor", 1);
  std::unique_ptr<store::Store> store = store::Store::open(home.path());
  store::JournalId journal{};
  std::shared_ptr<CaptureSink> sink = std::make_shared<CaptureSink>("web");
  std::shared_ptr<spdlog::logger> log = std::make_shared<spdlog::logger>("web", sink);
  size_t writes = 0;
  std::unique_ptr<web::WebServer> server;

  WebFixture() {
    log->set_level(spdlog::level::debug);
    journal = store::createJournal(*store, store::Keyring{identity, storageKey.view()}, "Ana's recovery");
    web::Household h{*store,
                     identity,
                     storageKey.view(),
                     "Ana",
                     home.path(),
                     "/nonexistent/kith",
                     [] {
                       return json{{"listen", "127.0.0.1:0"}, {"peers", json::array()}, {"relays", json::array()}};
                     },
                     [this] { ++writes; },
                     {}};
    web::WebOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.loginsPath = loginsPath();
    server = std::make_unique<web::WebServer>(io.getPort(), std::move(h), options, *log);
    server->start();
    REQUIRE(server->port() != 0);
  }
  ~WebFixture() {
    server.reset();
    store.reset();
  }
  WebFixture(const WebFixture&) = delete;
  WebFixture& operator=(const WebFixture&) = delete;

  std::string loginsPath() const { return home / "web-logins"; }
  std::string host() const { return "127.0.0.1:" + std::to_string(server->port()); }
  std::string origin() const { return "http://" + host(); }

  // Sends `text` (a whole HTTP/1.1 request) on a new connection and reads the answer: its head,
  // then Content-Length bytes of body (or up to the end of the stream without one).
  HttpAnswer send(const std::string& text) {
    kj::Own<UvStream> stream = waitWithin(io, node::connect(io.getPort(), "127.0.0.1", server->port()));
    waitWithin(io, stream->write(text.data(), text.size()));
    std::string got;
    char buffer[16 * 1024];
    size_t headEnd = std::string::npos;
    std::optional<size_t> length;
    HttpAnswer a;
    for (;;) {
      if (headEnd == std::string::npos) {
        headEnd = got.find("\r\n\r\n");
        if (headEnd != std::string::npos) {
          std::string head = got.substr(0, headEnd);
          size_t lineEnd = head.find("\r\n");
          a.statusLine = head.substr(0, lineEnd);
          REQUIRE(a.statusLine.rfind("HTTP/1.1 ", 0) == 0);
          a.status = static_cast<unsigned>(std::stoul(a.statusLine.substr(9, 3)));
          size_t at = lineEnd == std::string::npos ? head.size() : lineEnd + 2;
          while (at < head.size()) {
            size_t end = head.find("\r\n", at);
            if (end == std::string::npos) end = head.size();
            std::string line = head.substr(at, end - at);
            size_t colon = line.find(':');
            REQUIRE(colon != std::string::npos);
            std::string value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            std::string name = lower(line.substr(0, colon));
            INFO("header " << name << " given twice");
            CHECK(a.headers.count(name) == 0);
            a.headers[name] = value;
            at = end + 2;
          }
          if (a.has("content-length")) length = std::stoul(a.header("content-length"));
        }
      }
      if (headEnd != std::string::npos && length && got.size() >= headEnd + 4 + *length) break;
      size_t n = waitWithin(io, stream->tryRead(buffer, 1, sizeof buffer));
      if (n == 0) break;
      got.append(buffer, n);
    }
    REQUIRE(headEnd != std::string::npos);
    a.body = got.substr(headEnd + 4);
    if (length) {
      REQUIRE(a.body.size() >= *length);
      a.body.resize(*length);
    }
    return a;
  }

  HttpAnswer get(const std::string& path, const std::string& cookie = "", const std::string& hostHeader = "") {
    std::string r = "GET " + path + " HTTP/1.1\r\nHost: " + (hostHeader.empty() ? host() : hostHeader) + "\r\n";
    if (!cookie.empty()) r += "Cookie: " + cookie + "\r\n";
    r += "Connection: close\r\n\r\n";
    return send(r);
  }

  struct Post {
    Post(std::string path_, std::string body_, std::optional<std::string> origin_ = std::nullopt,
         std::string cookie_ = "", std::optional<std::string> csrf_ = std::nullopt)
        : path(std::move(path_)), body(std::move(body_)), origin(std::move(origin_)), cookie(std::move(cookie_)),
          csrf(std::move(csrf_)) {}
    std::string path;
    std::string body;
    std::optional<std::string> origin;  // nullopt: ours; "": none
    std::string cookie;
    std::optional<std::string> csrf;
    std::optional<size_t> contentLength;  // claimed instead of the body's own (which is then not sent)
  };
  HttpAnswer post(const Post& p) {
    std::string r = "POST " + p.path + " HTTP/1.1\r\nHost: " + host() + "\r\n";
    std::string o = p.origin ? *p.origin : origin();
    if (!o.empty()) r += "Origin: " + o + "\r\n";
    if (!p.cookie.empty()) r += "Cookie: " + p.cookie + "\r\n";
    if (p.csrf) r += "X-Kith-Csrf: " + *p.csrf + "\r\n";
    r += "Content-Type: application/json\r\n";
    r += "Content-Length: " + std::to_string(p.contentLength ? *p.contentLength : p.body.size()) + "\r\n";
    r += "Connection: close\r\n\r\n";
    if (!p.contentLength) r += p.body;
    return send(r);
  }

  std::string issueToken() { return web::LoginTokens(loginsPath()).issue(nowMs()); }

  // Signs in with a fresh token; returns the Cookie header value for the session.
  std::string signIn() {
    HttpAnswer a = post({"/login", json{{"token", issueToken()}}.dump()});
    REQUIRE(a.status == 200);
    std::string setCookie = a.header("set-cookie");
    REQUIRE(setCookie.rfind("kith_session=", 0) == 0);
    return setCookie.substr(0, setCookie.find(';'));
  }

  std::string csrfOf(const std::string& cookie) {
    HttpAnswer a = get("/api/session", cookie);
    REQUIRE(a.status == 200);
    json j = a.bodyJson();
    REQUIRE(j.is_object());
    REQUIRE(j.contains("csrf"));
    return j["csrf"].get<std::string>();
  }
};

void requireErrorJson(const HttpAnswer& a) {
  INFO(a.body);
  json j = a.bodyJson();
  REQUIRE(j.is_object());
  CHECK(j.contains("error"));
  CHECK(j.contains("hint"));
  CHECK(a.header("content-type").rfind("application/json", 0) == 0);
}

void checkSecurityHeaders(const HttpAnswer& a) {
  INFO(a.statusLine);
  CHECK(a.header("content-security-policy") == CSP);
  CHECK(a.header("x-frame-options") == "DENY");
  CHECK(a.header("x-content-type-options") == "nosniff");
  CHECK(a.header("referrer-policy") == "no-referrer");
}

}  // namespace

TEST_CASE("the page is served with its security headers", "[web][server]") {
  WebFixture f;
  HttpAnswer a = f.get("/");
  CHECK(a.status == 200);
  checkSecurityHeaders(a);
  CHECK(a.header("content-type").rfind("text/html", 0) == 0);
  CHECK(a.body.find("<html") != std::string::npos);

  HttpAnswer login = f.get("/login");
  CHECK(login.status == 200);
  checkSecurityHeaders(login);

  HttpAnswer js = f.get("/assets/app.js");
  CHECK(js.status == 200);
  checkSecurityHeaders(js);
  CHECK(!js.body.empty());

  // Errors carry them as well.
  HttpAnswer none = f.get("/api/session");
  checkSecurityHeaders(none);
}

TEST_CASE("a Host that is not ours is refused with 421, whatever the path", "[web][server]") {
  WebFixture f;
  for (const char* path : {"/", "/api/session", "/assets/app.js"}) {
    INFO(path);
    HttpAnswer a = f.get(path, "", "evil.example:" + std::to_string(f.server->port()));
    CHECK(a.status == 421);
    requireErrorJson(a);
    checkSecurityHeaders(a);
  }
  HttpAnswer otherPort = f.get("/", "", "127.0.0.1:" + std::to_string(f.server->port() + 1));
  CHECK(otherPort.status == 421);
  // Our other loopback names are ours.
  CHECK(f.get("/", "", "localhost:" + std::to_string(f.server->port())).status == 200);
}

TEST_CASE("the API answers 401 without a live session", "[web][server]") {
  WebFixture f;
  const uint64_t seqBefore = f.store->head(f.journal, f.identity.publicKey())->seq;
  HttpAnswer a = f.get("/api/session");
  CHECK(a.status == 401);
  requireErrorJson(a);
  CHECK(f.get("/api/session", "kith_session=" + std::string(64, 'a')).status == 401);
  CHECK(f.get("/api/session", "evil_kith_session=" + std::string(64, 'a')).status == 401);
  CHECK(f.get("/api/timeline?journal=" + toHex(f.journal)).status == 401);
  HttpAnswer p = f.post({"/api/post", json{{"journal", toHex(f.journal)}, {"text", "hello"}}.dump()});
  CHECK(p.status == 401);
  CHECK(f.store->head(f.journal, f.identity.publicKey())->seq == seqBefore);
}

TEST_CASE("signing in takes a token once and sets an HttpOnly, SameSite=Strict cookie", "[web][server]") {
  WebFixture f;
  std::string token = f.issueToken();
  std::string body = json{{"token", token}}.dump();

  HttpAnswer a = f.post({"/login", body});
  REQUIRE(a.status == 200);
  checkSecurityHeaders(a);
  CHECK(a.bodyJson() == json{{"ok", true}});
  std::string setCookie = a.header("set-cookie");
  INFO(setCookie);
  CHECK(setCookie.rfind("kith_session=", 0) == 0);
  CHECK(isLowerHex64(setCookie.substr(13, setCookie.find(';') - 13)));
  CHECK(setCookie.find("; HttpOnly") != std::string::npos);
  CHECK(setCookie.find("; SameSite=Strict") != std::string::npos);
  CHECK(setCookie.find("; Path=/") != std::string::npos);

  // The cookie is a live session.
  std::string cookie = setCookie.substr(0, setCookie.find(';'));
  CHECK(f.get("/api/session", cookie).status == 200);

  // The same token again: used.
  HttpAnswer again = f.post({"/login", body});
  CHECK(again.status == 403);
  requireErrorJson(again);
  CHECK_FALSE(again.has("set-cookie"));

  // A token nobody issued.
  HttpAnswer wrong = f.post({"/login", json{{"token", std::string(64, 'b')}}.dump()});
  CHECK(wrong.status == 403);
  CHECK_FALSE(wrong.has("set-cookie"));
}

TEST_CASE("a sign-in from another site is refused before its token is looked at", "[web][server]") {
  WebFixture f;
  std::string token = f.issueToken();
  std::string body = json{{"token", token}}.dump();

  WebFixture::Post evil{"/login", body};
  evil.origin = "http://evil.example";
  HttpAnswer a = f.post(evil);
  CHECK(a.status == 403);
  requireErrorJson(a);
  CHECK_FALSE(a.has("set-cookie"));

  WebFixture::Post noOrigin{"/login", body};
  noOrigin.origin = "";
  CHECK(f.post(noOrigin).status == 403);

  WebFixture::Post https{"/login", body};
  https.origin = "https://" + f.host();
  CHECK(f.post(https).status == 403);

  // The refused requests did not use the token up.
  CHECK(f.post({"/login", body}).status == 200);
}

TEST_CASE("a post through the API needs the session's CSRF token, then shows in the timeline", "[web][server]") {
  WebFixture f;
  std::string cookie = f.signIn();

  HttpAnswer session = f.get("/api/session", cookie);
  REQUIRE(session.status == 200);
  CHECK(session.header("cache-control") == "no-store");
  json s = session.bodyJson();
  REQUIRE(s.is_object());
  std::string csrf = s["csrf"].get<std::string>();
  CHECK(isLowerHex64(csrf));
  CHECK(csrf != cookie.substr(13));
  CHECK(s["me"]["key"] == toHex(f.identity.publicKey()));
  CHECK(s["me"]["name"] == "Ana");
  REQUIRE(s["journals"].size() == 1);
  CHECK(s["journals"][0]["id"] == toHex(f.journal));
  CHECK(s["journals"][0]["role"] == "owner");

  std::string text = "Home from the hospital today";
  std::string body = json{{"journal", toHex(f.journal)}, {"text", text}}.dump();
  const uint64_t seqBefore = f.store->head(f.journal, f.identity.publicKey())->seq;

  HttpAnswer noCsrf = f.post({"/api/post", body, std::nullopt, cookie});
  CHECK(noCsrf.status == 403);
  requireErrorJson(noCsrf);
  HttpAnswer wrongCsrf = f.post({"/api/post", body, std::nullopt, cookie, std::string(64, '0')});
  CHECK(wrongCsrf.status == 403);
  HttpAnswer crossSite = f.post({"/api/post", body, std::string("http://evil.example"), cookie, csrf});
  CHECK(crossSite.status == 403);
  CHECK(f.store->head(f.journal, f.identity.publicKey())->seq == seqBefore);
  CHECK(f.writes == 0);

  HttpAnswer ok = f.post({"/api/post", body, std::nullopt, cookie, csrf});
  INFO(ok.body);
  REQUIRE(ok.status == 200);
  checkSecurityHeaders(ok);
  json posted = ok.bodyJson();
  REQUIRE(posted.is_object());
  std::string id = posted["id"].get<std::string>();
  CHECK(isLowerHex64(id));
  CHECK(f.writes == 1);

  HttpAnswer timeline = f.get("/api/timeline?journal=" + toHex(f.journal), cookie);
  REQUIRE(timeline.status == 200);
  json t = timeline.bodyJson();
  REQUIRE(t.is_object());
  CHECK(t["journal"]["id"] == toHex(f.journal));
  CHECK(t["journal"]["is_owner"] == true);
  REQUIRE(t["updates"].size() == 1);
  CHECK(t["updates"][0]["id"] == id);
  CHECK(t["updates"][0]["text"] == text);
  CHECK(t["updates"][0]["mine"] == true);
  CHECK(t["updates"][0]["kind"] == "update");

  // Another journal's id is not found; a malformed one is a bad request.
  CHECK(f.get("/api/timeline?journal=" + std::string(64, 'c'), cookie).status == 404);
  CHECK(f.get("/api/timeline?journal=xyz", cookie).status == 400);
}

TEST_CASE("logging out ends the session", "[web][server]") {
  WebFixture f;
  std::string cookie = f.signIn();
  std::string csrf = f.csrfOf(cookie);
  CHECK(f.post({"/api/logout", "{}", std::nullopt, cookie, csrf}).status == 200);
  CHECK(f.get("/api/session", cookie).status == 401);
}

TEST_CASE("a body over WEB_BODY_BYTES_MAX is refused with 413 without being read", "[web][server]") {
  WebFixture f;
  std::string cookie = f.signIn();
  std::string csrf = f.csrfOf(cookie);
  const uint64_t seqBefore = f.store->head(f.journal, f.identity.publicKey())->seq;

  WebFixture::Post big{"/api/post", "", std::nullopt, cookie, csrf};
  big.contentLength = web::WEB_BODY_BYTES_MAX + 1;
  HttpAnswer a = f.post(big);
  CHECK(a.status == 413);
  requireErrorJson(a);
  checkSecurityHeaders(a);

  WebFixture::Post bigLogin{"/login", ""};
  bigLogin.contentLength = web::WEB_BODY_BYTES_MAX + 1;
  CHECK(f.post(bigLogin).status == 413);

  CHECK(f.store->head(f.journal, f.identity.publicKey())->seq == seqBefore);
  CHECK(f.writes == 0);
}

TEST_CASE("only the embedded assets are served: no other file, no way out of /assets/", "[web][server]") {
  WebFixture f;
  for (const char* name : {"app.js", "login.js", "style.css", "heart.svg"}) {
    INFO(name);
    CHECK(f.get(std::string("/assets/") + name).status == 200);
  }
  for (const char* path : {"/assets/../x", "/assets/nope.js", "/assets/", "/assets/index.html/x",
                           "/assets/..%2fweb-logins", "/assets/%2e%2e/web-logins", "/web-logins", "/x"}) {
    INFO(path);
    HttpAnswer a = f.get(path);
    CHECK(a.status == 404);
    checkSecurityHeaders(a);
  }
}
