#include "crypto/sodium.h"

#include <sodium.h>

#include "base/error.h"

namespace kith::crypto {

void init() {
  if (sodium_init() < 0) {
    throw Error(ErrorKind::IO, "libsodium failed to initialise", "check that /dev/urandom or getrandom() is available");
  }
}

}  // namespace kith::crypto
