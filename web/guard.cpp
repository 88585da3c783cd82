#include "web/guard.h"

#include <sodium.h>

#include <algorithm>
#include <sstream>

#include "base/error.h"
#include "base/files.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "web/limits.h"

namespace kith::web {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string randomHex() {
  Bytes b(32);
  crypto::randomBytes(b);
  return toHex(b);
}

std::string hashHex(std::string_view token) { return toHex(crypto::hash("kith-web-token", {asBytes(token)})); }

constexpr size_t WEB_LOGINS_FILE_BYTES_MAX = 64 * 1024;

}  // namespace

std::vector<std::string> allowedHosts(const std::string& host, uint16_t port) {
  std::string p = ":" + std::to_string(port);
  std::vector<std::string> out;
  bool v6 = host.find(':') != std::string::npos;
  out.push_back(lower(v6 && host.front() != '[' ? "[" + host + "]" : host) + p);
  if (host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]") {
    for (const char* h : {"127.0.0.1", "localhost", "[::1]"}) {
      std::string a = h + p;
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
  }
  return out;
}

bool hostAllowed(std::string_view hostHeader, const std::vector<std::string>& allowed) {
  std::string h = lower(hostHeader);
  return std::find(allowed.begin(), allowed.end(), h) != allowed.end();
}

bool originAllowed(std::optional<std::string_view> origin, std::string_view hostHeader) {
  return origin && lower(*origin) == "http://" + lower(hostHeader);
}

std::optional<std::string> cookieValue(std::string_view header, std::string_view name) {
  size_t at = 0;
  while (at < header.size()) {
    size_t end = header.find(';', at);
    if (end == std::string_view::npos) end = header.size();
    std::string_view part = header.substr(at, end - at);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
    at = end + 1;
  }
  return std::nullopt;
}

std::string sessionCookie(const std::string& id, int64_t maxAgeMs) {
  return std::string(SESSION_COOKIE) + "=" + id +
         "; HttpOnly; SameSite=Strict; Path=/; Max-Age=" + std::to_string(maxAgeMs / 1000);
}

bool jsonDepthWithin(std::string_view text, size_t maxDepth) {
  size_t depth = 0;
  bool inString = false, escaped = false;
  for (char c : text) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > maxDepth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

bool equalsConstantTime(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::vector<LoginTokens::Line> LoginTokens::load() const {
  std::vector<Line> out;
  std::optional<Bytes> file;
  try {
    file = readSmallFile("the sign-in tokens", path_, WEB_LOGINS_FILE_BYTES_MAX, "run 'kith web' again");
  } catch (const Error&) {
    return out;  // damaged: no token works; the next `kith web` writes a good file
  }
  if (!file) return out;
  std::istringstream in(std::string(file->begin(), file->end()));
  std::string hash;
  int64_t expires = 0;
  while (in >> hash >> expires) {
    if (hash.size() == 64) out.push_back({hash, expires});
  }
  return out;
}

void LoginTokens::save(const std::vector<Line>& lines) const {
  std::string text;
  for (const auto& l : lines) text += l.hash + " " + std::to_string(l.expiresMs) + "\n";
  writeFileAtomic(path_, asBytes(text), 0600);
}

std::string LoginTokens::issue(int64_t nowMs) const {
  std::vector<Line> lines = load();
  std::erase_if(lines, [&](const Line& l) { return l.expiresMs <= nowMs; });
  std::string token = randomHex();
  lines.push_back({hashHex(token), nowMs + WEB_LOGIN_TTL_MS});
  while (lines.size() > WEB_LOGINS_MAX) lines.erase(lines.begin());
  save(lines);
  return token;
}

bool LoginTokens::redeem(std::string_view token, int64_t nowMs) const {
  if (token.size() != 64) return false;
  std::vector<Line> lines = load();
  std::string h = hashHex(token);
  bool found = false;
  std::vector<Line> kept;
  for (const auto& l : lines) {
    bool match = equalsConstantTime(l.hash, h);
    if (match && l.expiresMs > nowMs) found = true;
    if (!match && l.expiresMs > nowMs) kept.push_back(l);
  }
  if (kept.size() != lines.size()) save(kept);
  return found;
}

std::string Sessions::open(int64_t nowMs) {
  std::erase_if(sessions_, [&](const auto& kv) { return nowMs - kv.second.lastUsedMs > WEB_SESSION_TTL_MS; });
  while (sessions_.size() >= WEB_SESSIONS_MAX) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.lastUsedMs < b.second.lastUsedMs;
    });
    sessions_.erase(oldest);
  }
  std::string id = randomHex();
  sessions_[hashHex(id)] = Session{randomHex(), nowMs};
  return id;
}

const Sessions::Session* Sessions::find(std::string_view id, int64_t nowMs) {
  if (id.size() != 64) return nullptr;
  auto it = sessions_.find(hashHex(id));
  if (it == sessions_.end()) return nullptr;
  if (nowMs - it->second.lastUsedMs > WEB_SESSION_TTL_MS) {
    sessions_.erase(it);
    return nullptr;
  }
  it->second.lastUsedMs = nowMs;
  return &it->second;
}

void Sessions::close(std::string_view id) {
  if (id.size() == 64) sessions_.erase(hashHex(id));
}

}  // namespace kith::web
