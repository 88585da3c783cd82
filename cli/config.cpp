#include "cli/config.h"

namespace kith::cli {

namespace {
Error corrupt(const store::Home& home, const std::string& what) {
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

std::pair<std::string, uint16_t> parseAddress(const std::string& text) {
  auto hp = node::parseHostPort(text);
  if (!hp || hp->second == 0) {
    throw Error(ErrorKind::USAGE, "'" + text + "' is not an address", "write it as HOST:PORT, e.g. 192.0.2.7:7400");
  }
  return *hp;
}

Config Config::load(const store::Home& home) {
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
  } catch (const nlohmann::json::exception& e) {
    throw corrupt(home, e.what());
  }
  return c;
}

void Config::save(const store::Home& home) const {
  nlohmann::json j = home.readConfig();
  j["listen"] = listen;
  nlohmann::json peersJson = nlohmann::json::array();
  for (const auto& p : peers) peersJson.push_back({{"address", node::formatHostPort(p.host, p.port)}, {"key", toHex(p.key)}});
  j["peers"] = peersJson;
  nlohmann::json followsJson = nlohmann::json::array();
  for (const auto& f : follows) followsJson.push_back({{"journal", toHex(f.journal)}, {"owner", toHex(f.owner)}});
  j["follows"] = followsJson;
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
  if (follows.size() >= CONFIG_FOLLOWS_MAX) throw Error(ErrorKind::INPUT, "this home follows too many journals already");
  follows.push_back(follow);
  return true;
}

bool Config::isFollowing(const protocol::JournalId& journal) const {
  for (const auto& f : follows) {
    if (f.journal == journal) return true;
  }
  return false;
}

}  // namespace kith::cli
