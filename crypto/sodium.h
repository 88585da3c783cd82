// libsodium's initialisation. Call kith::crypto::init() once from main (or the test runner) before
// any other crypto function; it is idempotent and thread-safe, as sodium_init() is.
#pragma once

namespace kith::crypto {

// Throws kith::Error when libsodium cannot initialise (no usable randomness source).
void init();

}  // namespace kith::crypto
