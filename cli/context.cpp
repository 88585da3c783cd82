#include "cli/context.h"

#include "store/actions.h"

#include <ctime>
#include <iostream>

#include "cli/config.h"
#include "cli/passphrase.h"

namespace kith::cli {

Context::Context(Options options)
    : options_(std::move(options)), home_(options_.home.empty() ? Home::defaultPath() : options_.home) {}

// A key file sealed at the interactive cost kith used before is sealed again at today's, with the
// same passphrase, once it has opened (specs/identity.md, "The Argon2id cost"). This is safe to do
// on the way: the file is replaced atomically (a crash leaves the old file or the new one, both
// opening with this passphrase); the only other writers of an existing home's key file are
// unlocks doing the same; and a command that cannot (a read-only home, no memory for Argon2id)
// goes on with the file it opened, to try again next time.
void Context::resealKeyFile(ByteView file, const crypto::UnlockedKeyFile& opened, ByteView passphrase) const {
  try {
    Bytes resealed = crypto::writeKeyFile(opened.identity, opened.name, passphrase);
    // Another command may have sealed it again meanwhile: leave its file alone.
    if (home_.readKeyFile() != Bytes(file.begin(), file.end())) return;
    home_.writeKeyFile(resealed);
    if (options_.verbose) std::cerr << "kith: sealed the key file again at the current passphrase cost\n";
  } catch (const Error& e) {
    if (options_.verbose) {
      std::cerr << "kith: note: could not seal the key file again (" << terminalSafe(e.what(), Newlines::ESCAPE)
                << "); it still opens as it is\n";
    }
  }
}

crypto::KeyFileInfo Context::keyInfo() const { return crypto::readKeyFileInfo(home_.readKeyFile()); }

const Unlocked& Context::unlock() {
  if (unlocked_) return *unlocked_;
  Bytes file = home_.readKeyFile();
  crypto::KeyFileInfo info = crypto::readKeyFileInfo(file);
  std::optional<crypto::SecretBuffer> passphrase;
  if (info.sealed) {
    passphrase = readPassphrase("Passphrase for this kith identity: ");
    if (!passphrase) {
      throw Error(ErrorKind::AUTH, "the identity is locked with a passphrase and there is no terminal to ask on",
                  "set KITH_PASSPHRASE");
    }
  }
  auto opened = crypto::openKeyFile(file, passphrase ? std::optional<ByteView>(passphrase->view()) : std::nullopt);
  if (info.costOutdated()) resealKeyFile(file, opened, passphrase->view());
  crypto::SecretBuffer storageKey = opened.identity.deriveKey("kithstor", 1);
  unlocked_.emplace(Unlocked{std::move(opened.identity), std::move(opened.name), std::move(storageKey)});
  return *unlocked_;
}

store::Store& Context::store() {
  if (!store_) {
    home_.readKeyFile();  // a home without an identity says "run kith init" rather than opening a store
    store_ = home_.openStore();
  }
  return *store_;
}

namespace {

// "Mum's journey" and "mum's JOURNEY" are the same title to a person typing it.
std::string foldCase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool looksLikeId(const std::string& text) {
  return text.size() >= 4 && text.size() <= 64 && tryFromHex(text.substr(0, text.size() & ~size_t{1})).has_value();
}

}  // namespace

std::vector<JournalChoice> Context::journalsTitled(const std::string& title) {
  store::Store& s = store();
  auto all = s.journals();
  if (all.empty()) return {};
  store::Keyring keyring = unlock().keyring();
  std::vector<JournalChoice> exact;
  std::vector<JournalChoice> folded;
  std::string wanted = foldCase(title);
  for (const auto& j : all) {
    auto t = store::journalTitle(s, keyring, j.id);
    if (!t) continue;
    if (*t == title) exact.push_back({j.id, *t});
    if (foldCase(*t) == wanted) folded.push_back({j.id, *t});
  }
  return exact.empty() ? folded : exact;
}

std::vector<store::JournalId> Context::journalsOrAll(const std::optional<std::string>& named) {
  if (named) return {journal(named)};
  std::vector<store::JournalId> out;
  for (const auto& j : store().journals()) out.push_back(j.id);
  return out;
}

store::JournalId Context::journal(const std::optional<std::string>& named) {
  store::Store& s = store();
  if (!named) {
    auto all = s.journals();
    if (all.size() == 1) return all[0].id;
    if (all.empty()) {
      throw Error(ErrorKind::NOT_FOUND, "this home has no journal yet",
                  "create one with 'kith journal create \"TITLE\"', or join a friend's with 'kith accept CODE'");
    }
    throw Error(ErrorKind::USAGE, "this home has " + std::to_string(all.size()) + " journals",
                "choose one with --journal followed by its title or id (see 'kith journal list')");
  }
  const std::string& name = *named;
  if (name.empty()) {
    throw Error(ErrorKind::USAGE, "the journal's name is empty", "give its title or id (see 'kith journal list')");
  }
  // An id (or its first characters) first: ids are what scripts and the other commands print.
  std::vector<store::JournalId> byId;
  if (looksLikeId(name)) byId = s.findJournals(foldCase(name));
  if (byId.size() == 1) return byId[0];
  if (byId.size() > 1) {
    throw Error(ErrorKind::USAGE, "'" + name + "' matches " + std::to_string(byId.size()) + " journals' ids",
                "give more characters of the id (see 'kith journal list')");
  }
  std::vector<JournalChoice> byTitle = journalsTitled(name);
  if (byTitle.size() == 1) return byTitle[0].id;
  if (byTitle.size() > 1) {
    std::string candidates;
    for (const auto& c : byTitle) {
      if (!candidates.empty()) candidates += ", ";
      candidates += toHex(c.id).substr(0, 8) + " \"" + c.title + "\"";
    }
    throw Error(ErrorKind::USAGE, std::to_string(byTitle.size()) + " journals are titled '" + name + "': " + candidates,
                "choose one by its id, e.g. --journal " + toHex(byTitle[0].id).substr(0, 8));
  }
  if (looksLikeId(name)) {
    throw Error(ErrorKind::NOT_FOUND, "there is no journal " + name + " in this home",
                "see the titles and ids with 'kith journal list'");
  }
  throw Error(ErrorKind::USAGE, "'" + name + "' is not a journal id or the title of a journal in this home",
              "give a title or id that 'kith journal list' shows");
}

bool Context::nodeRunning() const { return servingAddress(home_).has_value(); }

std::string Context::deliveryNote() const {
  if (nodeRunning()) return "";
  return "Queued: it will be sent when 'kith serve' runs (or with 'kith sync').";
}

void Context::print(const nlohmann::json& json, const std::string& text) const {
  if (options_.json) {
    std::cout << json.dump(2) << "\n";
  } else if (!text.empty()) {
    std::cout << text;
    if (text.back() != '\n') std::cout << "\n";
  }
}

std::string shortHex(ByteView bytes, size_t chars) { return toHex(bytes).substr(0, chars); }

std::string localTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

void requireText(const std::string& text, const char* what) { store::requireText(text, what); }

void requireSize(const std::string& text, size_t max, const char* what, const char* hint) {
  if (text.size() > max) {
    throw Error(ErrorKind::INPUT,
                std::string("the ") + what + " is " + std::to_string(text.size()) + " bytes, over the limit of " +
                    std::to_string(max),
                hint);
  }
}

std::string countOf(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace kith::cli

namespace kith::cli {

std::string terminalSafe(std::string_view text, Newlines newlines) {
  static constexpr char HEX[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  auto byteEscape = [&](unsigned char c) {
    out += "\\x";
    out += HEX[c >> 4];
    out += HEX[c & 0xf];
  };
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c < 0x80) {
      bool keptNewline = c == '\n' && newlines == Newlines::KEEP;
      if ((c < 0x20 && !keptNewline) || c == 0x7f) {
        byteEscape(c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
    uint32_t cp = 0;
    if (ok) {
      cp = len == 2 ? (c & 0x1fu) : len == 3 ? (c & 0x0fu) : (c & 0x07u);
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3fu);
      // An overlong form (ESC as C0 9B), a surrogate or a code point past Unicode is not UTF-8: a
      // lenient terminal could still read it as the character it spells.
      const uint32_t shortest = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
      ok = cp >= shortest && !(cp >= 0xd800 && cp <= 0xdfff) && cp <= 0x10ffff;
    }
    if (!ok) {
      byteEscape(c);
      ++i;
      continue;
    }
    bool control = (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
    if (control) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u{%04x}", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out.append(reinterpret_cast<const char*>(p + i), len);
    }
    i += len;
  }
  return out;
}

std::string errorLine(std::string_view what, std::string_view hint) {
  std::string line = "kith: error: " + terminalSafe(what, Newlines::ESCAPE);
  if (!hint.empty()) line += "; " + terminalSafe(hint, Newlines::ESCAPE);
  return line;
}

}  // namespace kith::cli
