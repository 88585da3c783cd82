// Reading the passphrase: from $KITH_PASSPHRASE, else from the terminal without echo. Never from
// a pipe: a script must say KITH_PASSPHRASE (or use an unencrypted key file) so that a forgotten
// setting fails at once instead of waiting for input that never comes.
#pragma once
#include <optional>

#include "crypto/secret.h"

namespace kith::cli {

constexpr size_t PASSPHRASE_BYTES_MAX = 1024;

// nullopt when there is no KITH_PASSPHRASE and no terminal to ask on. With `confirm` the terminal
// asks twice and throws Error(INPUT) when the two differ. Throws Error(INPUT) for an empty one.
std::optional<crypto::SecretBuffer> readPassphrase(const char* prompt, bool confirm);

}  // namespace kith::cli
