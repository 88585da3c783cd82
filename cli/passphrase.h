// Reading the passphrase: from $KITH_PASSPHRASE, else from the terminal without echo. Never from
// a pipe: a script must say KITH_PASSPHRASE (or use an unencrypted key file) so that a forgotten
// setting fails at once instead of waiting for input that never comes.
//
// A new passphrase must also be strong enough (specs/identity.md, "Choosing a passphrase"): the
// rule is checked when one is chosen, never when one is used to unlock.
#pragma once
#include <optional>

#include "base/bytes.h"
#include "cli/limits.h"
#include "crypto/secret.h"

namespace kith::cli {

// nullopt when there is no KITH_PASSPHRASE and no terminal to ask on. Throws Error(INPUT) for an
// empty one or one over PASSPHRASE_BYTES_MAX.
std::optional<crypto::SecretBuffer> readPassphrase(const char* prompt);

// Reads a passphrase being chosen: as readPassphrase, then requireStrongPassphrase (before a
// terminal asks to repeat it), then on a terminal asks again and throws Error(INPUT) when the two
// differ.
std::optional<crypto::SecretBuffer> readNewPassphrase(const char* prompt);

// Why a passphrase is too weak to choose, in the order they are checked.
enum class PassphraseWeakness {
  NONE,
  TOO_SHORT,                 // fewer than PASSPHRASE_CHARS_MIN characters
  FEW_DIFFERENT_CHARACTERS,  // fewer than PASSPHRASE_DISTINCT_CHARS_MIN different characters
  NO_LETTERS,                // only digits, spaces and signs, like a date or a phone number
  WELL_KNOWN,                // a common password or a keyboard or alphabet run
};
PassphraseWeakness passphraseWeakness(ByteView passphrase);

// Throws Error(INPUT) with one line saying why and what to do, unless passphraseWeakness is NONE.
void requireStrongPassphrase(ByteView passphrase);

}  // namespace kith::cli
