// BLAKE2b-256 with a domain string, used for entry ids, journal ids and fingerprints.
#pragma once
#include <initializer_list>
#include <string_view>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace kith::crypto {

constexpr size_t HASH_BYTES = 32;

// BLAKE2b-256 over `domain` (its bytes, then one 0x00) followed by each part in order. The domain
// keeps hashes made for different purposes apart.
Key32 hash(std::string_view domain, std::initializer_list<ByteView> parts);

// Keyed BLAKE2b-256 (`key` of 16 to 64 bytes) over `domain`, 0x00 and the parts, as hash() does:
// for keys derived from a secret (the relay mailbox keys of protocol/relay.h). The result is in
// guarded memory.
SecretBuffer keyedHash(ByteView key, std::string_view domain, std::initializer_list<ByteView> parts);
// The same into plain memory, for results that are no secret (a nonce sent beside its
// ciphertext): no guarded allocation, which costs several system calls per call.
Key32 keyedHashPublic(ByteView key, std::string_view domain, std::initializer_list<ByteView> parts);

// Plain BLAKE2b-256 (unkeyed, no domain) over a stream of bytes, as `b2sum -l 256` computes it: the
// checksum of files in formats people may check by hand (specs/backup.md).
class StreamHash {
public:
  StreamHash();
  void update(ByteView bytes);
  Key32 final();

private:
  alignas(64) unsigned char state_[384];  // libsodium's crypto_generichash_state (checked in hash.cpp)
};

}  // namespace kith::crypto
