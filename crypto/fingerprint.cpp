#include "crypto/fingerprint.h"

#include <cstdio>

#include "crypto/hash.h"

namespace kith::crypto {

std::string fingerprint(const PublicKey& key) {
  // Each group takes 5 bytes (40 bits) of the digest as a big-endian number, modulo 100000, as
  // Signal's safety numbers do; the small modulo bias does not matter for comparison by eye.
  constexpr int GROUPS = 4;
  constexpr int GROUP_BYTES = 5;
  Key32 digest = hash("kith/fingerprint/v1", {key});
  std::string out;
  for (int g = 0; g < GROUPS; ++g) {
    uint64_t v = 0;
    for (int i = 0; i < GROUP_BYTES; ++i) v = v << 8 | digest[g * GROUP_BYTES + i];
    char buf[8];
    std::snprintf(buf, sizeof buf, "%05u", static_cast<unsigned>(v % 100000));
    if (g > 0) out.push_back(' ');
    out += buf;
  }
  return out;
}

}  // namespace kith::crypto
