// The rpc target's node, shared with make-corpus: a Replicator over a throwaway store.
//
// Threading: the thread that made it, with a KJ event loop.
// Caveats:
// - The store lives in a temp folder made once per process and removed when the RpcNode is
//   destroyed; inputs that add entries or redeem its invite change it for the inputs after them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "crypto/keys.h"
#include "crypto/secret.h"
#include "protocol/entry.h"

namespace spdlog {
class logger;
}
namespace kith::store {
class Store;
}
namespace kith::node {
class Replicator;
}

namespace kith::fuzz {

// rpc: the node's owner, the peer the fuzz input speaks as, and what the node holds.
inline constexpr uint8_t RPC_OWNER = 0x31;
inline constexpr uint8_t RPC_PEER = 0x32;
inline constexpr uint8_t RPC_STRANGER = 0x33;
inline constexpr uint8_t RPC_JOURNAL_SALT = 0x34;
inline constexpr uint8_t RPC_EPOCH_KEY = 0x35;
inline constexpr uint8_t RPC_INVITE_SECRET = 0x36;

// A store in a fresh temp folder with one journal of RPC_OWNER (salt and epoch key fixed, so its id
// is the same in every process): the genesis, RPC_PEER added as a co-author, two updates and a
// comment, and an open invite whose secret is INVITE_SECRET_BYTES of RPC_INVITE_SECRET. The
// Replicator serves it; nodeFor(peer()) is what a session with RPC_PEER would get.
class RpcNode {
public:
  RpcNode();
  ~RpcNode();
  RpcNode(const RpcNode&) = delete;
  RpcNode& operator=(const RpcNode&) = delete;

  node::Replicator& replicator() { return *replicator_; }
  store::Store& store() { return *store_; }
  const protocol::JournalId& journal() const { return journal_; }
  const crypto::Identity& owner() const { return owner_; }
  const crypto::Identity& peer() const { return peer_; }
  const std::string& dir() const { return dir_; }
  ByteView epochKey() const { return epochKey_.view(); }

private:
  std::string dir_;
  crypto::Identity owner_;
  crypto::Identity peer_;
  crypto::SecretBuffer storageKey_;
  crypto::SecretBuffer epochKey_;
  protocol::JournalId journal_{};
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<node::Replicator> replicator_;
};

}  // namespace kith::fuzz
