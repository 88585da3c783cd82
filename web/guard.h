// What stands between a browser and the household's journals (specs/web-api.md, "Signing in" and
// "What every request meets"): the Host and Origin checks, the session cookie, one-time sign-in
// tokens from `kith web`, and sessions.
//
// Threading: the loop thread (Sessions); LoginTokens only touch their file, from any process.
// Caveats:
// - Sessions live in the node's memory: a restart of `kith serve` signs everyone out.
// - A token is kept as its hash only: HOME/web-logins lets nobody sign in by reading it.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kith::web {

constexpr std::string_view SESSION_COOKIE = "kith_session";

// The Host values the page answers to when it listens on host:port: the host as given, and for a
// loopback address 127.0.0.1, localhost and [::1] too.
std::vector<std::string> allowedHosts(const std::string& host, uint16_t port);
// Whether a request's Host header names us (case-insensitively); anything else may be a DNS
// rebinding attack (a name of the attacker's that now points at 127.0.0.1).
bool hostAllowed(std::string_view hostHeader, const std::vector<std::string>& allowed);
// Whether a state-changing request comes from our own page: Origin is http:// + our Host.
bool originAllowed(std::optional<std::string_view> origin, std::string_view hostHeader);
// The value of cookie `name` in a Cookie header, if present.
std::optional<std::string> cookieValue(std::string_view cookieHeader, std::string_view name);
// The Set-Cookie value for a session id (HttpOnly, SameSite=Strict, Path=/).
std::string sessionCookie(const std::string& id, int64_t maxAgeMs);

// One-time sign-in tokens: `kith web` issues, the running node redeems. HOME/web-logins holds one
// line per token: the hex BLAKE2b-256 hash of the token (domain "kith-web-token") and its expiry (ms since the epoch).
class LoginTokens {
public:
  explicit LoginTokens(std::string path) : path_(std::move(path)) {}
  // A new token (64 hex characters), valid WEB_LOGIN_TTL_MS from nowMs.
  std::string issue(int64_t nowMs) const;
  // True (and the token is used up) when `token` is one issued and not expired; compared in
  // constant time. A damaged file counts as no tokens.
  bool redeem(std::string_view token, int64_t nowMs) const;

private:
  struct Line {
    std::string hash;
    int64_t expiresMs = 0;
  };
  std::vector<Line> load() const;
  void save(const std::vector<Line>& lines) const;
  std::string path_;
};

class Sessions {
public:
  struct Session {
    std::string csrf;  // 64 hex characters, sent by the page with each POST
    int64_t lastUsedMs = 0;
  };
  // A new session's id (64 hex characters).
  std::string open(int64_t nowMs);
  // The live session with this id (and it is used now), or nullptr.
  const Session* find(std::string_view id, int64_t nowMs);
  void close(std::string_view id);
  size_t size() const { return sessions_.size(); }

private:
  // Keyed by the id's hash: looking one up reveals nothing of the ids held through timing.
  std::map<std::string, Session> sessions_;
};

// Whether the JSON text nests arrays and objects at most `maxDepth` deep (brackets inside strings
// do not count). Checked before parsing: the parser recurses once per level.
bool jsonDepthWithin(std::string_view text, size_t maxDepth);

// Constant-time equality of two strings (false for different lengths).
bool equalsConstantTime(std::string_view a, std::string_view b);

}  // namespace kith::web
