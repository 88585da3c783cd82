#include "cli/config.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli/context.h"

namespace kith::cli {

namespace {
constexpr size_t LOCK_BYTES_MAX = 256;
std::string lockPath(const Home& home) { return home.path() + "/serve.lock"; }
}  // namespace

ServeLock::ServeLock(const Home& home) {
  fd_ = ::open(lockPath(home).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error(ErrorKind::IO, "cannot open " + lockPath(home), "check the home folder's permissions");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    auto other = servingAddress(home);
    throw Error(ErrorKind::CONFLICT,
                "another 'kith serve' already runs on this home" + (other ? " (on " + *other + ")" : std::string()),
                "stop it first, or use another --home");
  }
}

void ServeLock::setAddress(const std::string& address) {
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, address.data(), std::min(address.size(), LOCK_BYTES_MAX), 0);
}

ServeLock::~ServeLock() {
  if (fd_ >= 0) {
    (void)!::ftruncate(fd_, 0);
    ::close(fd_);  // releases the lock
  }
}

std::string serveStatusPath(const Home& home) { return home.path() + "/serve-status.json"; }

std::optional<std::string> servingAddress(const Home& home) {
  int fd = ::open(lockPath(home).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> out;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    char buf[LOCK_BYTES_MAX];
    ssize_t n = ::read(fd, buf, sizeof buf);
    out = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("(address unknown)");
  }
  ::close(fd);
  return out;
}

std::string webLoginsPath(const Home& home) { return home.path() + "/web-logins"; }

WebAddressFile::WebAddressFile(const Home& home) : path_(home.path() + "/web-address") {}

WebAddressFile::~WebAddressFile() {
  if (written_) ::unlink(path_.c_str());
}

void WebAddressFile::write(const std::string& address) {
  writeFileAtomic(path_, asBytes(address), 0600);
  written_ = true;
}

std::optional<std::string> webAddress(const Home& home) {
  if (!servingAddress(home)) return std::nullopt;
  std::optional<Bytes> file;
  try {
    file = readSmallFile("the page's address", home.path() + "/web-address", 300, "restart 'kith serve'");
  } catch (const Error&) { return std::nullopt; }
  if (!file || file->empty()) return std::nullopt;
  return std::string(file->begin(), file->end());
}

namespace {
Error corrupt(const Home& home, const std::string& what) {
  return Error(ErrorKind::CORRUPT, home.configPath() + ": " + what, "fix or remove the entry in the file");
}
}  // namespace

crypto::PublicKey parseKey(const std::string& text, const char* what) {
  auto key = tryKey32FromHex(text);
  if (!key) {
    throw Error(ErrorKind::USAGE, std::string("'") + text + "' is not a " + what,
                "give the 64 hexadecimal digits that 'kith id' shows");
  }
  if (!crypto::toBoxPublicKey(*key)) {
    throw Error(ErrorKind::USAGE, std::string("'") + text.substr(0, 16) + "...' is not a valid " + what,
                "check that it was copied completely");
  }
  return *key;
}

Bytes parseRelayToken(const std::string& text) {
  auto token = tryFromHex(text);
  if (!token || token->empty() || token->size() > RELAY_TOKEN_BYTES_MAX) {
    throw Error(ErrorKind::USAGE, "'" + terminalSafe(text.substr(0, 20)) + "' is not a relay access token",
                "give the hexadecimal token the relay's operator made with 'kith relay token'");
  }
  return *token;
}

std::pair<std::string, uint16_t> parseAddress(const std::string& text, bool allowAnyPort) {
  auto hp = node::parseHostPort(text);
  if (!hp || (hp->second == 0 && !allowAnyPort)) {
    throw Error(ErrorKind::USAGE, "'" + text + "' is not an address", "write it as HOST:PORT, e.g. 192.0.2.7:7400");
  }
  return *hp;
}

Config Config::load(const Home& home) {
  nlohmann::json j = home.readConfig();
  Config c;
  try {
    if (j.contains("listen")) c.listen = j.at("listen").get<std::string>();
    if (!node::parseHostPort(c.listen)) throw corrupt(home, "'listen' is not HOST:PORT");
    if (j.contains("peers")) {
      const auto& peers = j.at("peers");
      if (!peers.is_array() || peers.size() > CONFIG_PEERS_MAX) throw corrupt(home, "'peers' is not a list");
      for (const auto& p : peers) {
        auto hp = node::parseHostPort(p.at("address").get<std::string>());
        auto key = tryKey32FromHex(p.at("key").get<std::string>());
        if (!hp || !key) throw corrupt(home, "a peer has a malformed address or key");
        c.peers.push_back({hp->first, hp->second, *key});
      }
    }
    if (j.contains("follows")) {
      const auto& follows = j.at("follows");
      if (!follows.is_array() || follows.size() > CONFIG_FOLLOWS_MAX) throw corrupt(home, "'follows' is not a list");
      for (const auto& f : follows) {
        auto journal = tryKey32FromHex(f.at("journal").get<std::string>());
        auto owner = tryKey32FromHex(f.at("owner").get<std::string>());
        if (!journal || !owner) throw corrupt(home, "a followed journal has a malformed id or key");
        c.follows.push_back({*journal, *owner});
      }
    }
    if (j.contains("relay_tokens")) {
      const auto& tokens = j.at("relay_tokens");
      if (!tokens.is_object() || tokens.size() > CONFIG_RELAY_TOKENS_MAX) {
        throw corrupt(home, "'relay_tokens' is not a map of relay keys to tokens");
      }
      for (const auto& [k, v] : tokens.items()) {
        auto key = tryKey32FromHex(k);
        auto token = tryFromHex(v.get<std::string>());
        if (!key || !token || token->size() > RELAY_TOKEN_BYTES_MAX) {
          throw corrupt(home, "a relay token has a malformed key or token");
        }
        c.relayTokens[*key] = *token;
      }
    }
    if (j.contains("relay_invites")) {
      const auto& invites = j.at("relay_invites");
      if (!invites.is_array() || invites.size() > CONFIG_RELAY_INVITES_MAX) {
        throw corrupt(home, "'relay_invites' is not a list");
      }
      for (const auto& i : invites) {
        auto id = tryKey32FromHex(i.at("invite").get<std::string>());
        auto hp = node::parseHostPort(i.at("address").get<std::string>());
        auto key = tryKey32FromHex(i.at("key").get<std::string>());
        if (!id || !hp || !key) throw corrupt(home, "a relay invite has a malformed id, address or key");
        c.relayInvites.push_back({*id, protocol::RelayAddress{hp->first, hp->second, *key}});
      }
    }
  } catch (const nlohmann::json::exception&) {
    // The library's own text names its internals, not the file: say what the file must hold.
    throw corrupt(home,
                  "a setting is missing or of the wrong type ('listen', and each peer's 'address' and 'key' "
                  "and each followed journal's 'journal' and 'owner', are text)");
  }
  return c;
}

void Config::save(const Home& home) const {
  nlohmann::json j = home.readConfig();
  j["listen"] = listen;
  nlohmann::json peersJson = nlohmann::json::array();
  for (const auto& p : peers)
    peersJson.push_back({{"address", node::formatHostPort(p.host, p.port)}, {"key", toHex(p.key)}});
  j["peers"] = peersJson;
  nlohmann::json followsJson = nlohmann::json::array();
  for (const auto& f : follows) followsJson.push_back({{"journal", toHex(f.journal)}, {"owner", toHex(f.owner)}});
  j["follows"] = followsJson;
  if (!relayTokens.empty() || j.contains("relay_tokens")) {
    nlohmann::json tokens = nlohmann::json::object();
    for (const auto& [k, v] : relayTokens) tokens[toHex(k)] = toHex(v);
    j["relay_tokens"] = tokens;
  }
  if (!relayInvites.empty() || j.contains("relay_invites")) {
    nlohmann::json invites = nlohmann::json::array();
    for (const auto& i : relayInvites) {
      invites.push_back({{"invite", toHex(i.invite)},
                         {"address", node::formatHostPort(i.relay.host, i.relay.port)},
                         {"key", toHex(i.relay.key)}});
    }
    j["relay_invites"] = invites;
  }
  home.writeConfig(j);
}

bool Config::addPeer(const node::PeerAddress& peer) {
  for (auto& p : peers) {
    if (p.key == peer.key) {
      if (p.host == peer.host && p.port == peer.port) return false;
      p.host = peer.host;
      p.port = peer.port;
      return true;
    }
  }
  if (peers.size() >= CONFIG_PEERS_MAX) throw Error(ErrorKind::INPUT, "this home knows too many peers already");
  peers.push_back(peer);
  return true;
}

bool Config::addFollow(const Follow& follow) {
  if (isFollowing(follow.journal)) return false;
  if (follows.size() >= CONFIG_FOLLOWS_MAX)
    throw Error(ErrorKind::INPUT, "this home follows too many journals already");
  follows.push_back(follow);
  return true;
}

bool Config::removeFollow(const protocol::JournalId& journal) {
  auto before = follows.size();
  std::erase_if(follows, [&](const Follow& f) { return f.journal == journal; });
  return follows.size() != before;
}

bool Config::removePeer(const crypto::PublicKey& key) {
  auto before = peers.size();
  std::erase_if(peers, [&](const node::PeerAddress& p) { return p.key == key; });
  return peers.size() != before;
}

namespace {
bool hexStartsWith(const Key32& key, std::string_view prefix) {
  std::string hex = toHex(key);
  if (prefix.size() > hex.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = prefix[i];
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (hex[i] != c) return false;
  }
  return true;
}
}  // namespace

std::vector<Follow> Config::followsMatching(std::string_view hexPrefix) const {
  std::vector<Follow> out;
  for (const auto& f : follows) {
    if (hexStartsWith(f.journal, hexPrefix)) out.push_back(f);
  }
  return out;
}

std::vector<node::PeerAddress> Config::peersMatching(std::string_view hexPrefix) const {
  std::vector<node::PeerAddress> out;
  for (const auto& p : peers) {
    if (hexStartsWith(p.key, hexPrefix)) out.push_back(p);
  }
  return out;
}

bool Config::isFollowing(const protocol::JournalId& journal) const {
  for (const auto& f : follows) {
    if (f.journal == journal) return true;
  }
  return false;
}

bool Config::followsFrom(const protocol::JournalId& journal, const crypto::PublicKey& peer) const {
  for (const auto& f : follows) {
    if (f.journal == journal && f.owner == peer) return true;
  }
  return false;
}

}  // namespace kith::cli
