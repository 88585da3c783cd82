// Fuzz target: the key file. The input is a file found in a home. readKeyFileInfo and openKeyFile
// (without a passphrase, and with the fixed one of fuzz-support.h) must refuse it with kith::Error
// and nothing else; a file that opens must hold the public key its clear header shows.
//
// A sealed file names its own Argon2id cost, up to KEY_FILE_COST ("moderate": 256 MiB, 3 passes,
// what kith writes): openKeyFile accepts that for a real user's file, but thousands of inputs a
// second cannot pay it, so the passphrase is given only when the cost named is at most
// "interactive" (what kith wrote before) or outside the bounds openKeyFile accepts (refused before
// any hashing).
#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/key-file.h"
#include "tests/fuzz/fuzz-support.h"

namespace {

using namespace kith;

// The layout of specs/identity.md: magic (8) | mode (1) | opslimit u64 | memlimit u64 | ...
constexpr size_t OPSLIMIT_AT = 9;
constexpr size_t MEMLIMIT_AT = 17;
constexpr size_t LIMITS_END = 25;

bool affordable(ByteView file) {
  if (file.size() < LIMITS_END) return true;
  uint64_t ops = getU64(file.data() + OPSLIMIT_AT);
  uint64_t mem = getU64(file.data() + MEMLIMIT_AT);
  bool cheap = ops <= crypto::KEY_FILE_COST_INTERACTIVE.opslimit && mem <= crypto::KEY_FILE_COST_INTERACTIVE.memlimit;
  bool refused = ops < crypto::KEY_FILE_OPSLIMIT_MIN || ops > crypto::KEY_FILE_OPSLIMIT_MAX ||
                 mem < crypto::KEY_FILE_MEMLIMIT_MIN || mem > crypto::KEY_FILE_MEMLIMIT_MAX;
  return cheap || refused;
}

void open(ByteView file, std::optional<ByteView> passphrase) {
  crypto::UnlockedKeyFile unlocked = crypto::openKeyFile(file, passphrase);
  // openKeyFile read the header already, so this cannot throw now.
  crypto::KeyFileInfo info = crypto::readKeyFileInfo(file);
  if (unlocked.identity.publicKey() != info.publicKey) fuzz::contractBroken("keyfile", "opened under another key");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kith::fuzz::setUp();
  ByteView file(data, size);
  try {
    (void)crypto::readKeyFileInfo(file);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::CORRUPT) fuzz::contractBroken("keyfile", std::string("info: not CORRUPT: ") + e.what());
  }
  try {
    open(file, std::nullopt);
  } catch (const Error&) {}
  if (affordable(file)) {
    try {
      open(file, asBytes(fuzz::KEY_FILE_PASSPHRASE));
    } catch (const Error&) {}
  }
  return 0;
}
