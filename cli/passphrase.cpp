#include "cli/passphrase.h"

#include <fcntl.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

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

// Well-known passwords, lower case, without spaces or signs, and without digits at either end (so
// that "Password2024!" matches "password"). Keyboard and alphabet runs are found by KEYBOARD_RUNS.
// Short on purpose: this is a floor against the first guesses anyone tries, not a dictionary.
constexpr std::string_view WELL_KNOWN_PASSWORDS[] = {
    "password", "passw0rd", "passphrase", "mypassword",    "mypassphrase", "iloveyou",
    "letmein",  "welcome",  "admin",      "administrator", "monkey",       "dragon",
    "football", "baseball", "basketball", "sunshine",      "princess",     "trustno",
    "master",   "shadow",   "superman",   "batman",        "starwars",     "whatever",
    "freedom",  "secret",   "changeme",   "changeit",      "helloworld",   "opensesame",
    "default",  "login",    "computer",   "internet",      "kith",         "correcthorsebatterystaple",
};
// A passphrase that is part of one of these (an alphabet or a keyboard row, in QWERTY, QWERTZ and
// AZERTY order) is as guessable as a well-known password.
constexpr std::string_view KEYBOARD_RUNS[] = {
    "abcdefghijklmnopqrstuvwxyz", "zyxwvutsrqponmlkjihgfedcba", "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm", "azertyuiopqsdfghjklmwxcvbn", "poiuytrewqlkjhgfdsamnbvcxz",
};

bool isAsciiLetter(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(uint8_t c) { return c >= '0' && c <= '9'; }
// The first byte of a UTF-8 character (or a stray byte): anything but a continuation byte.
bool startsCharacter(uint8_t c) { return (c & 0xc0) != 0x80; }

// The passphrase as compared with the well-known ones: ASCII letters in lower case, every other
// ASCII character but digits dropped, then the digits at either end dropped. In guarded memory:
// it is most of the passphrase.
crypto::SecretBuffer guessableCore(ByteView passphrase) {
  crypto::SecretBuffer core(passphrase.size());
  size_t len = 0;
  for (uint8_t c : passphrase) {
    if (isAsciiLetter(c)) {
      core.data()[len++] = static_cast<uint8_t>(c | 0x20);
    } else if (isDigit(c) || c >= 0x80) {
      core.data()[len++] = c;
    }
  }
  size_t begin = 0;
  while (begin < len && isDigit(core.data()[begin])) ++begin;
  while (len > begin && isDigit(core.data()[len - 1])) --len;
  return crypto::SecretBuffer::copyOf({core.data() + begin, len - begin});
}

// Reads a passphrase; a new one (`choosing`) must be strong, and a terminal asks for it twice.
std::optional<crypto::SecretBuffer> readAny(const char* prompt, bool choosing) {
  if (const char* env = std::getenv("KITH_PASSPHRASE"); env != nullptr) {
    size_t len = std::strlen(env);
    if (len == 0) throw Error(ErrorKind::INPUT, "KITH_PASSPHRASE is empty", "set it to the passphrase, or unset it");
    if (len > PASSPHRASE_BYTES_MAX) {
      throw Error(ErrorKind::INPUT, "KITH_PASSPHRASE is longer than 1024 bytes",
                  "use a passphrase of at most 1024 bytes");
    }
    crypto::SecretBuffer passphrase = crypto::SecretBuffer::copyOf({reinterpret_cast<const uint8_t*>(env), len});
    if (choosing) requireStrongPassphrase(passphrase.view());
    return passphrase;
  }
  if (!::isatty(STDIN_FILENO) && !::isatty(STDERR_FILENO)) return std::nullopt;
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  try {
    crypto::SecretBuffer first = askTerminal(fd, prompt);
    if (first.empty()) throw Error(ErrorKind::INPUT, "the passphrase is empty", "type a passphrase");
    if (choosing) {
      requireStrongPassphrase(first.view());
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

}  // namespace

PassphraseWeakness passphraseWeakness(ByteView passphrase) {
  // Characters are UTF-8 code points; a byte that is not UTF-8 counts as one character.
  std::vector<size_t> starts;
  for (size_t i = 0; i < passphrase.size(); ++i) {
    if (startsCharacter(passphrase[i]) || starts.empty()) starts.push_back(i);
  }
  if (starts.size() < PASSPHRASE_CHARS_MIN) return PassphraseWeakness::TOO_SHORT;

  auto character = [&](size_t k) {
    size_t end = k + 1 < starts.size() ? starts[k + 1] : passphrase.size();
    return passphrase.subspan(starts[k], end - starts[k]);
  };
  size_t distinct = 0;
  for (size_t k = 0; k < starts.size() && distinct < PASSPHRASE_DISTINCT_CHARS_MIN; ++k) {
    ByteView c = character(k);
    bool seen = false;
    for (size_t j = 0; j < k && !seen; ++j) {
      ByteView earlier = character(j);
      seen = earlier.size() == c.size() && std::memcmp(earlier.data(), c.data(), c.size()) == 0;
    }
    if (!seen) ++distinct;
  }
  if (distinct < PASSPHRASE_DISTINCT_CHARS_MIN) return PassphraseWeakness::FEW_DIFFERENT_CHARACTERS;

  bool letter = false;
  for (uint8_t c : passphrase) letter = letter || isAsciiLetter(c) || c >= 0x80;
  if (!letter) return PassphraseWeakness::NO_LETTERS;

  crypto::SecretBuffer core = guessableCore(passphrase);
  std::string_view coreText(reinterpret_cast<const char*>(core.data()), core.size());
  for (std::string_view known : WELL_KNOWN_PASSWORDS) {
    if (coreText == known) return PassphraseWeakness::WELL_KNOWN;
  }
  for (std::string_view run : KEYBOARD_RUNS) {
    if (!coreText.empty() && run.find(coreText) != std::string_view::npos) return PassphraseWeakness::WELL_KNOWN;
  }
  return PassphraseWeakness::NONE;
}

void requireStrongPassphrase(ByteView passphrase) {
  // Advice a person can follow at once: a few words they will remember are long, varied and personal.
  static const std::string WORDS = "a few words you will remember, like a short sentence";
  switch (passphraseWeakness(passphrase)) {
    case PassphraseWeakness::NONE:
      return;
    case PassphraseWeakness::TOO_SHORT:
      throw Error(ErrorKind::INPUT, "the passphrase is too short",
                  "choose one of at least " + std::to_string(PASSPHRASE_CHARS_MIN) + " characters: " + WORDS);
    case PassphraseWeakness::FEW_DIFFERENT_CHARACTERS:
      throw Error(ErrorKind::INPUT, "the passphrase repeats too few different characters",
                  "choose one with at least " + std::to_string(PASSPHRASE_DISTINCT_CHARS_MIN) +
                      " different characters: " + WORDS);
    case PassphraseWeakness::NO_LETTERS:
      throw Error(ErrorKind::INPUT, "the passphrase has no letters, and digits like a date are quick to guess",
                  "choose " + WORDS);
    case PassphraseWeakness::WELL_KNOWN:
      throw Error(ErrorKind::INPUT, "the passphrase is a well-known password, among the first anyone tries",
                  "choose something of your own: " + WORDS);
  }
  KITH_ASSERT(false);
}

std::optional<crypto::SecretBuffer> readPassphrase(const char* prompt) { return readAny(prompt, false); }

std::optional<crypto::SecretBuffer> readNewPassphrase(const char* prompt) { return readAny(prompt, true); }

}  // namespace kith::cli
