// The home's config.json as the commands use it: the listen address, known peers, followed journals.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "cli/home.h"
#include "node/node.h"

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

  static Config load(const Home& home);  // throws Error(CORRUPT) with the file's name
  void save(const Home& home) const;
  // Adds or updates the peer with this key; returns true when something changed.
  bool addPeer(const node::PeerAddress& peer);
  bool addFollow(const Follow& follow);
  bool isFollowing(const protocol::JournalId& journal) const;
  // True when this home follows `journal` from `peer` (the key given to `kith follow`, or the
  // inviting node).
  bool followsFrom(const protocol::JournalId& journal, const crypto::PublicKey& peer) const;
};

// `kith serve` holds an exclusive lock on HOME/serve.lock (with its listen address inside) while it
// runs, so that a second serve on the same home is refused and `kith status` can tell.
class ServeLock {
public:
  // Throws Error(CONFLICT) when another serve holds the lock.
  explicit ServeLock(const Home& home);
  ~ServeLock();
  ServeLock(const ServeLock&) = delete;
  ServeLock& operator=(const ServeLock&) = delete;
  void setAddress(const std::string& address);

private:
  int fd_ = -1;
};
// The address a running `kith serve` of this home listens on; nullopt when none runs.
std::optional<std::string> servingAddress(const Home& home);

// Parses a 64-hex-digit public key given on the command line; throws Error(USAGE) saying what.
crypto::PublicKey parseKey(const std::string& text, const char* what);
// Parses HOST:PORT given on the command line; throws Error(USAGE).
// Port 0 (the OS chooses) only with `allowAnyPort`, for a listen address.
std::pair<std::string, uint16_t> parseAddress(const std::string& text, bool allowAnyPort = false);

}  // namespace kith::cli
