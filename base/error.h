// kith's error type for failures of the world: bad user input, a corrupt or foreign file, a wrong
// passphrase, a peer that misbehaves. `what()` says what happened; `hint()` says what to do about it.
// Our own bugs are assertions (KITH_ASSERT), which stay on in release builds.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace kith {

enum class ErrorKind {
  USAGE,      // the command line is wrong (exit code 2)
  INPUT,      // a value given by the user or a peer is malformed or out of limits
  NOT_FOUND,  // a home, journal, entry or key does not exist
  AUTH,       // a wrong passphrase, a bad signature, a refused peer
  CORRUPT,    // a file or a store is damaged or not kith's
  CONFLICT,   // the thing exists already, or a second different entry at the same place (a fork)
  IO,         // the disk or the network failed
};

class Error : public std::runtime_error {
public:
  Error(ErrorKind kind, const std::string& what, std::string hint = {})
      : std::runtime_error(what), kind_(kind), hint_(std::move(hint)) {}
  ErrorKind kind() const noexcept { return kind_; }
  const std::string& hint() const noexcept { return hint_; }

private:
  ErrorKind kind_;
  std::string hint_;
};

// What to do about a damaged home: every "restore from a backup" hint names the commands that do it.
inline constexpr const char* HINT_RESTORE_STORE =
    "run 'kith check' for details; restore the home with 'kith restore FILE' from a backup made by "
    "'kith backup FILE', or re-sync it from your peers";
inline constexpr const char* HINT_RESTORE_KEY =
    "restore the home with 'kith restore FILE' from a backup made by 'kith backup FILE'";

[[noreturn]] inline void assertFailed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "kith: internal error: assertion failed: %s (%s:%d)\n", expr, file, line);
  std::abort();
}

}  // namespace kith

// An assertion about our own code; never used for input from a user, a file or a peer.
#define KITH_ASSERT(expr) ((expr) ? static_cast<void>(0) : ::kith::assertFailed(#expr, __FILE__, __LINE__))
