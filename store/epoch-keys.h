// Epoch keys at rest. A journal's body key changes with each removal (a new epoch); this node
// keeps the keys wrapped to it, sealed with XChaCha20-Poly1305 under a storage key derived from
// its identity, with associated data "kith/epoch-key/v1" | journal | epoch (specs/entry.md).
// Keys are unsealed into guarded memory (crypto::SecretBuffer) and never stored in the clear.
// Store::putEpochKey and Store::epochKey are the public calls; store/epoch-keys.cpp holds the
// sealing, used on append (a wrap to this node) and by the integrity check.
//
// Threading: values only.
#pragma once
#include "crypto/keys.h"

namespace kith::store {

// What this node needs to take in epoch keys wrapped to it: its identity and the at-rest key.
struct Keyring {
  const crypto::Identity& identity;
  ByteView storageKey;  // 32 bytes, Identity::deriveKey("kithstor", 1)
};

}  // namespace kith::store
