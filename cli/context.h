// What every command shares: the parsed global options, the home, unlocking the identity, and
// picking the journal a command is about.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "cli/home.h"
#include "crypto/key-file.h"
#include "store/journal.h"

namespace kith::cli {

struct Options {
  std::string home;  // empty: Home::defaultPath()
  bool json = false;
  bool verbose = false;
};

// The unlocked identity and the key that seals epoch keys at rest.
struct Unlocked {
  crypto::Identity identity;
  std::string name;
  crypto::SecretBuffer storageKey;
  store::Keyring keyring() const { return store::Keyring{identity, storageKey.view()}; }
};

// A journal as a person may know it: its id and its title.
struct JournalChoice {
  store::JournalId id{};
  std::string title;
};

class Context {
public:
  explicit Context(Options options);

  const Options& options() const { return options_; }
  const Home& home() const { return home_; }
  // The identity's public key, without unlocking.
  crypto::KeyFileInfo keyInfo() const;
  // Unlocks the key file (asking for the passphrase when sealed). Cached for the command. A file
  // sealed at an outdated Argon2id cost is sealed again at today's (specs/identity.md).
  const Unlocked& unlock();
  store::Store& store();

  // The journal named by `--journal`, or the only journal of the home when none is named. A name
  // is tried as an id (the hex id or a unique prefix of at least 4 digits) first, then as a title
  // (exactly, else ignoring the case of A-Z). Throws Error(USAGE) for an ambiguous prefix or a
  // title that several journals have (listing them), Error(NOT_FOUND) when nothing matches.
  // Matching a title unlocks the identity (titles are encrypted).
  store::JournalId journal(const std::optional<std::string>& named);
  // The journal named by `--journal` as journal() finds it, or every journal of the home when none
  // is named (for commands that list across journals).
  std::vector<store::JournalId> journalsOrAll(const std::optional<std::string>& named);
  // The journals whose title is `title` (exactly; else ignoring the case of A-Z). Unlocks.
  std::vector<JournalChoice> journalsTitled(const std::string& title);

  // Whether a `kith serve` runs for this home now (it holds HOME/serve.lock): what is posted then
  // goes out at once; otherwise it waits in the store for the next serve or sync.
  bool nodeRunning() const;
  // The line for a command that wrote an entry (post, comment, heart, ...) to print after its own:
  // empty while a node runs (the entry goes out at once), else "Queued: it will be sent when
  // 'kith serve' runs (or with 'kith sync')."
  std::string deliveryNote() const;

  // Prints a JSON value (with --json) or text.
  void print(const nlohmann::json& json, const std::string& text) const;

private:
  void resealKeyFile(ByteView file, const crypto::UnlockedKeyFile& opened, ByteView passphrase) const;

  Options options_;
  Home home_;
  std::optional<Unlocked> unlocked_;
  std::unique_ptr<store::Store> store_;
};

// Formatting shared by the commands.
std::string shortHex(ByteView bytes, size_t chars = 12);
std::string localTime(int64_t ms);
// Throws Error(INPUT) unless `text` is valid UTF-8 without NUL bytes.
void requireText(const std::string& text, const char* what);
// Text written by another member (an update, a comment, a journal's title) or sent by a peer (a
// refusal's reason, an error) made safe to print on a terminal: every control character but the
// newline (C0, DEL, C1) and the bidirectional overrides and isolates (U+202A-U+202E,
// U+2066-U+2069) are written visibly as \xNN or \u{NNNN}, and bytes that are not UTF-8 (overlong
// forms and surrogates included) as \xNN, so that nothing received can clear a reader's screen,
// set the window's title, or reorder what is shown. With Newlines::ESCAPE the newline is written
// as \x0a too, for what must stay on one line (error and log lines). JSON output needs none of
// this (it is escaped).
enum class Newlines { KEEP, ESCAPE };
std::string terminalSafe(std::string_view text, Newlines newlines = Newlines::KEEP);
// The line `kith` prints for a failure: "kith: error: <what>; <hint>" (no "; " without a hint),
// terminal-safe and on one line whatever `what` and `hint` hold, without the final newline.
std::string errorLine(std::string_view what, std::string_view hint);
// Throws Error(INPUT) when `text` is over `max` bytes: "the <what> is N bytes, over the limit of M".
void requireSize(const std::string& text, size_t max, const char* what, const char* hint);
// "1 entry", "3 entries".
std::string countOf(uint64_t n, const char* one, const char* many);

}  // namespace kith::cli
