// What `kith` prints from the network reaches the terminal only terminal-safe: terminalSafe itself,
// the error line every failure ends in (errorLine), and the log sink of the networked commands.
// A hostile peer's refusal reason with ESC, OSC and CSI sequences must come out visible and inert.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "base/bytes.h"
#include "cli/context.h"
#include "cli/runtime.h"

namespace {

using namespace kith;
using namespace kith::cli;

// A reason a hostile peer might send: clear the screen, set the window title (OSC ... BEL and
// OSC ... ST), an 8-bit CSI in UTF-8, a right-to-left override, an overlong ESC, a NUL, a second
// line pretending to be kith's.
const std::string HOSTILE = std::string("go away\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]2;title\x1b\\") +
                            "\xc2\x9b"
                            "31m\xe2\x80\xae\xc0\x9b" +
                            std::string(1, '\0') + "\nkith: all is well\r";

// No byte a terminal would act on: C0 controls (a newline only where `newlines` keeps it), DEL, the
// C1 controls and bidirectional overrides in UTF-8, and bytes that are not UTF-8.
void requireInert(const std::string& shown, bool newlineAllowed) {
  for (size_t i = 0; i < shown.size(); ++i) {
    auto c = static_cast<unsigned char>(shown[i]);
    INFO("byte " << i << " of: " << shown);
    if (c == '\n') {
      CHECK(newlineAllowed);
      continue;
    }
    CHECK(c >= 0x20);
    CHECK(c != 0x7f);
  }
  CHECK(shown.find("\xc2\x9b") == std::string::npos);
  CHECK(shown.find("\xe2\x80\xae") == std::string::npos);
  CHECK(shown.find("\xc0") == std::string::npos);
}

std::string readAll(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  return out;
}

}  // namespace

TEST_CASE("terminalSafe shows every control sequence visibly and keeps newlines only when asked",
          "[cli][terminal-safe]") {
  std::string kept = terminalSafe(HOSTILE);
  requireInert(kept, true);
  CHECK(kept.find("go away\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\x1b]2;title\\x1b\\") == 0);
  CHECK(kept.find("\\u{009b}31m\\u{202e}") != std::string::npos);
  CHECK(kept.find("\\x00\nkith: all is well\\x0d") != std::string::npos);

  std::string oneLine = terminalSafe(HOSTILE, Newlines::ESCAPE);
  requireInert(oneLine, false);
  CHECK(oneLine.find("\\x00\\x0akith: all is well\\x0d") != std::string::npos);

  // Text that needs nothing is left as it is, non-ASCII letters included.
  const std::string plain = "Grandma's hip: all fine \xe2\x9c\xbf \xce\xb1\xce\xb2";
  CHECK(terminalSafe(plain, Newlines::ESCAPE) == plain);
}

TEST_CASE("terminalSafe escapes byte by byte what is not UTF-8: overlong forms and surrogates and truncated ones",
          "[cli][terminal-safe]") {
  // An overlong ESC (C0 9B), an overlong CSI (E0 82 9B), a surrogate (ED A0 80), past U+10FFFF
  // (F4 90 80 80), a lone continuation byte, and a sequence cut short at the end.
  CHECK(terminalSafe("\xc0\x9b[2J") == "\\xc0\\x9b[2J");
  CHECK(terminalSafe("\xe0\x82\x9b") == "\\xe0\\x82\\x9b");
  CHECK(terminalSafe("\xed\xa0\x80") == "\\xed\\xa0\\x80");
  CHECK(terminalSafe("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
  CHECK(terminalSafe("a\x9b") == "a\\x9b");
  CHECK(terminalSafe("a\xe2\x80") == "a\\xe2\\x80");
  // The shortest forms of the same code points are kept (U+0080 is a C1 control, so shown).
  CHECK(terminalSafe("\xc2\x80") == "\\u{0080}");
  CHECK(terminalSafe("\xe0\xa0\x80") == "\xe0\xa0\x80");
  CHECK(terminalSafe("\xf4\x8f\xbf\xbf") == "\xf4\x8f\xbf\xbf");
}

TEST_CASE("an error line carrying a hostile peer's reason reaches the terminal inert and on one line",
          "[cli][terminal-safe]") {
  std::string line = errorLine("the peer refused the connection: " + HOSTILE, "try again later\x1b[31m");
  requireInert(line, false);
  CHECK(line.rfind("kith: error: the peer refused the connection: go away\\x1b[2J", 0) == 0);
  CHECK(line.find("; try again later\\x1b[31m") != std::string::npos);
  // No hint, no "; ".
  CHECK(errorLine("out of memory", "") == "kith: error: out of memory");
}

TEST_CASE("the log sink writes a peer's words inert and one line per message", "[cli][terminal-safe]") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    auto logger = makeLogger(false, file);
    logger->warn("[peer {}] journal {}: the peer refused to replicate: {}", "ab12cd34", "0011223344", HOSTILE);
    logger->info("second line");
    logger->flush();
  }
  std::string written = readAll(file);
  std::fclose(file);
  requireInert(written, true);
  // Exactly two lines: the hostile newline did not start a third.
  size_t lines = 0;
  for (char c : written) lines += c == '\n' ? 1 : 0;
  CHECK(lines == 2);
  CHECK(written.find("the peer refused to replicate: go away\\x1b[2J") != std::string::npos);
  CHECK(written.find("\\x0akith: all is well") != std::string::npos);
  CHECK(written.find(" second line\n") != std::string::npos);
}
