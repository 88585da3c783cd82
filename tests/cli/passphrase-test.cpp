// Choosing a passphrase: each reason a weak one is refused (specs/identity.md, "Choosing a
// passphrase"), the boundaries of each rule, and that the refusal is one line saying why and what to
// do without repeating the passphrase.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "base/error.h"
#include "cli/limits.h"
#include "cli/passphrase.h"
#include "tests/support/errors.h"

namespace {

using namespace kith;
using namespace kith::cli;

const char* nameOf(PassphraseWeakness w) {
  switch (w) {
    case PassphraseWeakness::NONE:
      return "none";
    case PassphraseWeakness::TOO_SHORT:
      return "too short";
    case PassphraseWeakness::FEW_DIFFERENT_CHARACTERS:
      return "few different characters";
    case PassphraseWeakness::NO_LETTERS:
      return "no letters";
    case PassphraseWeakness::WELL_KNOWN:
      return "well known";
  }
  return "?";
}

PassphraseWeakness weaknessOf(const std::string& passphrase) { return passphraseWeakness(asBytes(passphrase)); }

struct Case {
  std::string passphrase;
  PassphraseWeakness expected;
};

void requireAll(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    INFO("'" << c.passphrase << "': expected " << nameOf(c.expected) << ", got " << nameOf(weaknessOf(c.passphrase)));
    CHECK(weaknessOf(c.passphrase) == c.expected);
  }
}

}  // namespace

TEST_CASE("a passphrase under 10 characters is too short counted in characters not bytes", "[cli][passphrase]") {
  REQUIRE(PASSPHRASE_CHARS_MIN == 10);
  requireAll({
      {"", PassphraseWeakness::TOO_SHORT},
      {"a", PassphraseWeakness::TOO_SHORT},
      {"plum tree", PassphraseWeakness::TOO_SHORT},  // 9
      {"plum trees", PassphraseWeakness::NONE},      // 10
      // Nine characters in 18 bytes (Greek): short, however many bytes.
      {"\xce\xb1\xce\xb2\xce\xb3\xce\xb4\xce\xb5\xce\xb6\xce\xb7\xce\xb8\xce\xb9", PassphraseWeakness::TOO_SHORT},
      // Ten Greek letters: long enough, and letters.
      {"\xce\xb1\xce\xb2\xce\xb3\xce\xb4\xce\xb5\xce\xb6\xce\xb7\xce\xb8\xce\xb9\xce\xba", PassphraseWeakness::NONE},
  });
}

TEST_CASE("a passphrase of fewer than 5 different characters is refused", "[cli][passphrase]") {
  REQUIRE(PASSPHRASE_DISTINCT_CHARS_MIN == 5);
  requireAll({
      {"aaaaaaaaaaaa", PassphraseWeakness::FEW_DIFFERENT_CHARACTERS},
      {"            ", PassphraseWeakness::FEW_DIFFERENT_CHARACTERS},
      {"abababababab", PassphraseWeakness::FEW_DIFFERENT_CHARACTERS},
      {"abcdabcdabcd", PassphraseWeakness::FEW_DIFFERENT_CHARACTERS},  // 4
      {"1111122222", PassphraseWeakness::FEW_DIFFERENT_CHARACTERS},
      // Multi-byte characters are compared whole: four different ones, each repeated.
      {"\xc3\xa9\xc3\xa8\xc3\xaa\xc3\xab\xc3\xa9\xc3\xa8\xc3\xaa\xc3\xab\xc3\xa9\xc3\xa8",
       PassphraseWeakness::FEW_DIFFERENT_CHARACTERS},
      {"abcdeabcdeab", PassphraseWeakness::NONE},  // 5 (and not a run: it wraps)
  });
}

TEST_CASE("a passphrase without a letter (a date or a phone number) is refused", "[cli][passphrase]") {
  requireAll({
      {"1234567890", PassphraseWeakness::NO_LETTERS},
      {"12/05/1950", PassphraseWeakness::NO_LETTERS},
      {"1950-05-12 !!", PassphraseWeakness::NO_LETTERS},
      {"+44 20 7946 0958", PassphraseWeakness::NO_LETTERS},
      {"12/05/1950 Rosa", PassphraseWeakness::NONE},  // a word with the date passes this rule
  });
}

TEST_CASE("a well-known password or a keyboard run is refused whatever its capitals and signs and end digits",
          "[cli][passphrase]") {
  requireAll({
      {"password123", PassphraseWeakness::WELL_KNOWN},
      {"Password2024!", PassphraseWeakness::WELL_KNOWN},
      {"2024PASSWORD", PassphraseWeakness::WELL_KNOWN},
      {"P a s s w o r d 1", PassphraseWeakness::WELL_KNOWN},
      {"iloveyou!!", PassphraseWeakness::WELL_KNOWN},
      {"I love you 123", PassphraseWeakness::WELL_KNOWN},
      {"letmein2020", PassphraseWeakness::WELL_KNOWN},
      {"correct horse battery staple", PassphraseWeakness::WELL_KNOWN},
      {"qwertyuiop", PassphraseWeakness::WELL_KNOWN},
      {"qwerty 12345", PassphraseWeakness::WELL_KNOWN},
      {"asdfghjkl;", PassphraseWeakness::WELL_KNOWN},
      {"abcdefghij", PassphraseWeakness::WELL_KNOWN},
      {"zyxwvutsrq", PassphraseWeakness::WELL_KNOWN},
      {"azertyuiop", PassphraseWeakness::WELL_KNOWN},
      {"abc1234567", PassphraseWeakness::WELL_KNOWN},
      // Digits inside are not stripped, nor are other words: these are not on the list.
      {"pass1234word", PassphraseWeakness::NONE},
      {"password for the garden gate", PassphraseWeakness::NONE},
  });
}

TEST_CASE("ordinary passphrases a person would choose are accepted", "[cli][passphrase]") {
  requireAll({
      {"plum-orchard-7 lantern quietly", PassphraseWeakness::NONE},
      {"the blue heron is late", PassphraseWeakness::NONE},
      {"Grandma's garden 1962", PassphraseWeakness::NONE},
      {"kith passphrase here", PassphraseWeakness::NONE},
      {"\xe6\x98\xa5\xe7\x9c\xa0\xe4\xb8\x8d\xe8\xa7\x89\xe6\x99\x93\xe5\xa4\x84\xe5\xa4\x84\xe9\x97\xbb\xe5\x95\xbc"
       "\xe9\xb8\x9f",
       PassphraseWeakness::NONE},  // ten Chinese characters, a line of a poem
  });
}

TEST_CASE("a weak passphrase is refused with one line saying why and what to do and never echoes it",
          "[cli][passphrase]") {
  struct Refusal {
    std::string passphrase;
    const char* why;
  };
  for (const Refusal& r : {Refusal{"secretly", "too short"}, Refusal{"zzzzzzzzzzzz", "too few different characters"},
                           Refusal{"31/12/1999", "no letters"}, Refusal{"Letmein2024", "well-known password"}}) {
    INFO(r.passphrase);
    Error e = kith::test::errorOf([&] { requireStrongPassphrase(asBytes(r.passphrase)); });
    CHECK(e.kind() == ErrorKind::INPUT);
    std::string what = e.what();
    CHECK(what.find(r.why) != std::string::npos);
    CHECK(e.hint().rfind("choose", 0) == 0);
    for (const std::string& part : {what, e.hint()}) {
      CHECK(part.find('\n') == std::string::npos);
      CHECK(part.find(r.passphrase) == std::string::npos);
    }
  }
  CHECK_NOTHROW(requireStrongPassphrase(asBytes(std::string("the blue heron is late"))));
}
