// The identity's key file: the 32-byte Ed25519 seed and the person's display name, sealed with a
// passphrase (Argon2id via crypto_pwhash, then XChaCha20-Poly1305), or stored unencrypted for
// headless nodes that chose --no-passphrase. The public key stays readable without the passphrase
// so that `kith id` and `kith status` need none. Byte layout: specs/identity.md.
//
// Nothing here touches the disk: the store's Home reads and writes the file (mode 0600).
// Caveats:
// - openKeyFile throws Error(AUTH) for a wrong passphrase and Error(CORRUPT) for a damaged or
//   foreign file; both messages are fit to show to the user.
// - New files are sealed at libsodium's "moderate" Argon2id cost (KEY_FILE_COST: 3 passes over
//   256 MiB: about 0.55 s on one idle x86-64 core, 1.6 s on a busy one). Every command that needs the secret key pays
//   it once, which is the price of making each guess at a stolen file cost as much. Files sealed at the "interactive"
//   cost kith used before (2 passes, 64 MiB) still open; KeyFileInfo::costOutdated says when a file should be sealed
//   again.
// - A file names its own cost. openKeyFile refuses a cost outside KEY_FILE_OPSLIMIT_MIN..MAX and
//   KEY_FILE_MEMLIMIT_MIN..MAX as damaged, before hashing anything, so that a forged file cannot
//   make an unlock take gigabytes or minutes.
// - Nothing here judges the passphrase's strength: that is a rule for choosing one (cli/passphrase.h);
//   a file sealed with any passphrase opens with it.
#pragma once
#include <optional>
#include <string>

#include "crypto/keys.h"

namespace kith::crypto {

constexpr size_t KEY_FILE_NAME_BYTES_MAX = 256;
constexpr size_t KEY_FILE_BYTES_MAX = 4096;

// The Argon2id cost of a sealed file: passes over memory (crypto_pwhash's opslimit) and memory in
// bytes (its memlimit). Both are recorded in the file's clear header (specs/identity.md).
struct KeyFileCost {
  uint64_t opslimit;
  uint64_t memlimit;
};
// What kith writes: crypto_pwhash_OPSLIMIT_MODERATE and _MEMLIMIT_MODERATE (asserted in
// key-file.cpp).
constexpr KeyFileCost KEY_FILE_COST{3, uint64_t{256} << 20};
// What kith wrote before: crypto_pwhash_OPSLIMIT_INTERACTIVE and _MEMLIMIT_INTERACTIVE. Such files
// open, and are sealed again at KEY_FILE_COST when their owner next unlocks them (cli/context.h).
constexpr KeyFileCost KEY_FILE_COST_INTERACTIVE{2, uint64_t{64} << 20};
// The costs a reader accepts: from the weakest kith ever wrote to the strongest it writes. A file
// naming anything else is refused as damaged, before any hashing: at most 256 MiB and 3 passes.
constexpr uint64_t KEY_FILE_OPSLIMIT_MIN = KEY_FILE_COST_INTERACTIVE.opslimit;
constexpr uint64_t KEY_FILE_OPSLIMIT_MAX = KEY_FILE_COST.opslimit;
constexpr uint64_t KEY_FILE_MEMLIMIT_MIN = KEY_FILE_COST_INTERACTIVE.memlimit;
constexpr uint64_t KEY_FILE_MEMLIMIT_MAX = KEY_FILE_COST.memlimit;

struct KeyFileInfo {
  PublicKey publicKey;
  bool sealed;  // true when a passphrase protects it
  // The cost its header names ({0, 0} when not sealed); not yet checked against the bounds above.
  KeyFileCost cost;
  // Sealed at a lower cost than KEY_FILE_COST: worth sealing again once it has been opened.
  bool costOutdated() const {
    return sealed && (cost.opslimit < KEY_FILE_COST.opslimit || cost.memlimit < KEY_FILE_COST.memlimit);
  }
};

// Serialises `identity` and `name`; sealed with `passphrase` at `cost` unless it is nullopt.
// Asserts that `cost` is within the bounds above (tests write KEY_FILE_COST_INTERACTIVE files).
// Throws Error(INPUT) for a name over KEY_FILE_NAME_BYTES_MAX, Error(IO) when Argon2id cannot
// get its memory.
Bytes writeKeyFile(const Identity& identity, const std::string& name, std::optional<ByteView> passphrase,
                   KeyFileCost cost = KEY_FILE_COST);

// Reads the clear header (public key, sealed or not). Throws Error(CORRUPT) when it is not a key file.
KeyFileInfo readKeyFileInfo(ByteView file);

struct UnlockedKeyFile {
  Identity identity;
  std::string name;
};

// Opens the key file. A sealed file needs the passphrase (Error(AUTH) when missing or wrong).
UnlockedKeyFile openKeyFile(ByteView file, std::optional<ByteView> passphrase);

}  // namespace kith::crypto
