// The identity's key file: the 32-byte Ed25519 seed and the person's display name, sealed with a
// passphrase (Argon2id via crypto_pwhash, then XChaCha20-Poly1305), or stored unencrypted for
// headless nodes that chose --no-passphrase. The public key stays readable without the passphrase
// so that `kith id` and `kith status` need none. Byte layout: specs/identity.md.
//
// Nothing here touches the disk: the store's Home reads and writes the file (mode 0600).
// Caveats:
// - openKeyFile throws Error(AUTH) for a wrong passphrase and Error(CORRUPT) for a damaged or
//   foreign file; both messages are fit to show to the user.
// - The passphrase strength parameters are fixed at "interactive" (64 MiB, 2 passes): a node is
//   unlocked at every command, so seconds per unlock would hurt; the key file is 0600 besides.
#pragma once
#include <optional>
#include <string>

#include "crypto/keys.h"

namespace kith::crypto {

constexpr size_t KEY_FILE_NAME_BYTES_MAX = 256;
constexpr size_t KEY_FILE_BYTES_MAX = 4096;

struct KeyFileInfo {
  PublicKey publicKey;
  bool sealed;  // true when a passphrase protects it
};

// Serialises `identity` and `name`; sealed with `passphrase` unless it is nullopt.
Bytes writeKeyFile(const Identity& identity, const std::string& name, std::optional<ByteView> passphrase);

// Reads the clear header (public key, sealed or not). Throws Error(CORRUPT) when it is not a key file.
KeyFileInfo readKeyFileInfo(ByteView file);

struct UnlockedKeyFile {
  Identity identity;
  std::string name;
};

// Opens the key file. A sealed file needs the passphrase (Error(AUTH) when missing or wrong).
UnlockedKeyFile openKeyFile(ByteView file, std::optional<ByteView> passphrase);

}  // namespace kith::crypto
