// The home's config.json as the commands use it: the listen address, known peers, followed journals.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
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

constexpr size_t CONFIG_RELAY_TOKENS_MAX = 64;
constexpr size_t CONFIG_RELAY_INVITES_MAX = 256;
constexpr size_t RELAY_TOKEN_BYTES_MAX = 64;

// An invite redeemed through a relay: `kith serve` watches its mailbox there and answers.
struct RelayInvite {
  Key32 invite{};  // the invite's id (store/invites.h)
  protocol::RelayAddress relay;
};

struct Config {
  std::string listen = DEFAULT_LISTEN;
  std::vector<node::PeerAddress> peers;
  std::vector<Follow> follows;
  // Relay operators' access tokens, by relay key (`kith relay add --token`): the owner's node
  // gives one when it makes a mailbox on that relay.
  std::map<crypto::PublicKey, Bytes> relayTokens;
  std::vector<RelayInvite> relayInvites;

  static Config load(const Home& home);  // throws Error(CORRUPT) with the file's name
  void save(const Home& home) const;
  // Adds or updates the peer with this key; returns true when something changed.
  bool addPeer(const node::PeerAddress& peer);
  bool addFollow(const Follow& follow);
  // Removes the follow of `journal`, or the peer with this key; returns false when there was none.
  bool removeFollow(const protocol::JournalId& journal);
  bool removePeer(const crypto::PublicKey& key);
  // The follows whose journal id starts with the hex prefix (case-insensitive), for ids typed by
  // people; a follow records a journal this home may not hold (yet).
  std::vector<Follow> followsMatching(std::string_view hexPrefix) const;
  // The known peers whose key starts with the hex prefix (case-insensitive).
  std::vector<node::PeerAddress> peersMatching(std::string_view hexPrefix) const;
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
// HOME/serve-status.json, which a running `kith serve` keeps (peers and relays reached, last seen).
std::string serveStatusPath(const Home& home);

// The address a running `kith serve` of this home listens on; nullopt when none runs.
std::optional<std::string> servingAddress(const Home& home);

// HOME/web-logins: the one-time sign-in tokens of `kith web` (web/guard.h), as hashes.
std::string webLoginsPath(const Home& home);
// HOME/web-address: where the running serve's page is, for `kith web`; written once the page
// listens, removed when serve stops.
class WebAddressFile {
public:
  explicit WebAddressFile(const Home& home);
  ~WebAddressFile();
  WebAddressFile(const WebAddressFile&) = delete;
  WebAddressFile& operator=(const WebAddressFile&) = delete;
  void write(const std::string& address);

private:
  std::string path_;
  bool written_ = false;
};
// The running serve's page address ("127.0.0.1:7401"); nullopt when no serve runs or it serves no
// page.
std::optional<std::string> webAddress(const Home& home);

// Parses a 64-hex-digit public key given on the command line; throws Error(USAGE) saying what.
crypto::PublicKey parseKey(const std::string& text, const char* what);
// Parses an operator's access token (hex) given on the command line; throws Error(USAGE).
Bytes parseRelayToken(const std::string& text);

// Parses HOST:PORT given on the command line; throws Error(USAGE).
// Port 0 (the OS chooses) only with `allowAnyPort`, for a listen address.
std::pair<std::string, uint16_t> parseAddress(const std::string& text, bool allowAnyPort = false);

}  // namespace kith::cli
