#include "cli/passphrase.h"

#include <fcntl.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace kith::cli {
namespace {

// Reads one line from the terminal with echo off into guarded memory.
crypto::SecretBuffer askTerminal(int fd, const char* prompt) {
  (void)!::write(fd, prompt, std::strlen(prompt));
  termios old{};
  bool restore = ::tcgetattr(fd, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  crypto::SecretBuffer buf(PASSPHRASE_BYTES_MAX);
  size_t len = 0;
  bool tooLong = false;
  for (;;) {
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n <= 0 || c == '\n' || c == '\r') break;
    if (len == buf.size()) {
      tooLong = true;
      continue;
    }
    buf.data()[len++] = static_cast<uint8_t>(c);
  }
  if (restore) ::tcsetattr(fd, TCSAFLUSH, &old);
  (void)!::write(fd, "\n", 1);
  if (tooLong) throw Error(ErrorKind::INPUT, "the passphrase is longer than 1024 bytes", "choose a shorter one");
  crypto::SecretBuffer out = crypto::SecretBuffer::copyOf({buf.data(), len});
  return out;
}

}  // namespace

std::optional<crypto::SecretBuffer> readPassphrase(const char* prompt, bool confirm) {
  if (const char* env = std::getenv("KITH_PASSPHRASE"); env != nullptr) {
    size_t len = std::strlen(env);
    if (len == 0) throw Error(ErrorKind::INPUT, "KITH_PASSPHRASE is empty", "set it to the passphrase, or unset it");
    if (len > PASSPHRASE_BYTES_MAX) {
      throw Error(ErrorKind::INPUT, "KITH_PASSPHRASE is longer than 1024 bytes",
                  "use a passphrase of at most 1024 bytes");
    }
    return crypto::SecretBuffer::copyOf({reinterpret_cast<const uint8_t*>(env), len});
  }
  if (!::isatty(STDIN_FILENO) && !::isatty(STDERR_FILENO)) return std::nullopt;
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  try {
    crypto::SecretBuffer first = askTerminal(fd, prompt);
    if (first.empty()) throw Error(ErrorKind::INPUT, "the passphrase is empty", "type a passphrase");
    if (confirm) {
      crypto::SecretBuffer second = askTerminal(fd, "Repeat the passphrase: ");
      if (second.size() != first.size() || sodium_memcmp(first.data(), second.data(), first.size()) != 0) {
        throw Error(ErrorKind::INPUT, "the two passphrases differ", "run the command again");
      }
    }
    ::close(fd);
    return first;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace kith::cli
