// Turns a crash inside LMDB on a damaged page into one error line instead of a signal death.
//
// LMDB trusts the pages of its data file: a damaged page can make it read through a wild pointer
// (SIGSEGV), past the end of the file (SIGBUS) or fail its own assertion (SIGABRT). Those faults
// happen while a store transaction is open (store::openTxnCount() > 0); the guard then writes
// STORE_CRASH_LINE with write(2) and leaves with _exit(1). Any other fault is a bug of ours: it is
// handed to the action installed before (AddressSanitizer's report in the sanitizer build), or the
// default action runs, so it still crashes loudly.
//
// Threading: process-wide; install once, from main, before any command runs.
// Caveats:
// - A bug of ours that faults while a transaction is open is reported as a damaged store; a
//   KITH_ASSERT failing inside a transaction prints its own line first.
// - `kith check` runs its walk in a child process with the default actions back
//   (resetCrashActions), so that it sees the signal itself and can name it.
#pragma once

namespace kith::cli {

inline constexpr char STORE_CRASH_LINE[] =
    "kith: error: reading the store crashed (it is damaged); run 'kith check', then restore with "
    "'kith restore FILE' from a backup made by 'kith backup FILE'\n";

// Installs the handlers for SIGSEGV, SIGBUS and SIGABRT with sigaction, keeping the old actions.
void installCrashGuard();
// Puts the default actions back (in a child process that must die of the signal itself).
void resetCrashActions();

}  // namespace kith::cli
