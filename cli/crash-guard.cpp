#include "cli/crash-guard.h"

#include <signal.h>
#include <unistd.h>

#include <cstddef>
#include <iterator>

#include "store/lmdb.h"

namespace kith::cli {
namespace {

constexpr int CRASH_SIGNALS[] = {SIGSEGV, SIGBUS, SIGABRT};
constexpr size_t CRASH_SIGNAL_COUNT = std::size(CRASH_SIGNALS);

// What was installed before us, per signal; written once before any command runs, then only read
// (by the handler).
struct sigaction previousActions[CRASH_SIGNAL_COUNT];

void setDefault(int sig) {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  ::sigaction(sig, &action, nullptr);
}

// Only async-signal-safe calls from here on: an atomic load, write, _exit, sigaction, raise.
void onCrashSignal(int sig, siginfo_t* info, void* context) {
  if (store::openTxnCount() > 0) {
    ssize_t written = ::write(STDERR_FILENO, STORE_CRASH_LINE, sizeof STORE_CRASH_LINE - 1);
    static_cast<void>(written);
    ::_exit(1);
  }
  for (size_t i = 0; i < CRASH_SIGNAL_COUNT; ++i) {
    if (CRASH_SIGNALS[i] != sig) continue;
    const struct sigaction& old = previousActions[i];
    if ((old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction != nullptr) {
      old.sa_sigaction(sig, info, context);
      return;
    }
    if ((old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
      old.sa_handler(sig);
      return;
    }
  }
  // The default action: a fault happens again when the handler returns and kills the process
  // then; a signal that was sent (kill, raise, abort) is sent again, delivered on return.
  setDefault(sig);
  if (info == nullptr || info->si_code <= 0) ::raise(sig);
}

}  // namespace

void installCrashGuard() {
  for (size_t i = 0; i < CRASH_SIGNAL_COUNT; ++i) {
    struct sigaction action {};
    action.sa_sigaction = onCrashSignal;
    sigemptyset(&action.sa_mask);
    // SA_ONSTACK uses the alternate stack where one is set (AddressSanitizer sets one).
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    ::sigaction(CRASH_SIGNALS[i], &action, &previousActions[i]);
  }
}

void resetCrashActions() {
  for (int sig : CRASH_SIGNALS) setDefault(sig);
}

}  // namespace kith::cli
