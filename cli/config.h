// The home's config.json as the commands use it: the listen address, known peers, followed journals.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "node/node.h"
#include "store/home.h"

namespace kith::cli {

constexpr const char* DEFAULT_LISTEN = "127.0.0.1:7400";
constexpr size_t CONFIG_PEERS_MAX = 1000;
constexpr size_t CONFIG_FOLLOWS_MAX = 1000;

struct Follow {
  protocol::JournalId journal{};
  crypto::PublicKey owner{};
};

struct Config {
  std::string listen = DEFAULT_LISTEN;
  std::vector<node::PeerAddress> peers;
  std::vector<Follow> follows;

  static Config load(const store::Home& home);  // throws Error(CORRUPT) with the file's name
  void save(const store::Home& home) const;
  // Adds or updates the peer with this key; returns true when something changed.
  bool addPeer(const node::PeerAddress& peer);
  bool addFollow(const Follow& follow);
  bool isFollowing(const protocol::JournalId& journal) const;
};

// Parses a 64-hex-digit public key given on the command line; throws Error(USAGE) saying what.
crypto::PublicKey parseKey(const std::string& text, const char* what);
// Parses HOST:PORT given on the command line; throws Error(USAGE).
std::pair<std::string, uint16_t> parseAddress(const std::string& text);

}  // namespace kith::cli
