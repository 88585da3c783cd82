#include "cli/reading.h"

#include <iostream>

#include "cli/config.h"
#include "crypto/aead.h"

namespace kith::cli {

namespace {

using nlohmann::json;

constexpr size_t READ_MARKS_BYTES_MAX = 4 * 1024 * 1024;
constexpr std::string_view READ_MARKS_AD = "kith/read-marks/v1";

std::string readMarksPath(const Home& home) { return home.path() + "/read-marks"; }

json loadAllMarks(Context& ctx) {
  try {
    auto sealed = readSmallFile("the read marks", readMarksPath(ctx.home()), READ_MARKS_BYTES_MAX,
                                "remove it: every entry then counts as unread");
    if (!sealed) return json::object();
    const Unlocked& me = ctx.unlock();
    auto plain = crypto::aeadOpen(me.storageKey.view(), *sealed, asBytes(READ_MARKS_AD));
    if (!plain) return json::object();
    json j = json::parse(plain->begin(), plain->end(), nullptr, false);
    return j.is_object() ? j : json::object();
  } catch (const Error&) { return json::object(); }
}

}  // namespace

Reading readJournalView(Context& ctx, const store::JournalId& journal) {
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  Reading r;
  r.journal = journal;
  std::vector<store::DamagedEntry> skipped;
  r.entries = store::readJournal(ctx.store(), keyring, journal, &skipped);
  for (const auto& d : skipped) {
    std::cerr << "kith: warning: entry " << (d.id ? shortHex(*d.id) + "\u2026" : std::string("(id unreadable)"))
              << " is damaged and was skipped";
    if (ctx.options().verbose) std::cerr << " (" << terminalSafe(d.reason, Newlines::ESCAPE) << ")";
    std::cerr << "; run 'kith check'\n";
  }
  r.view = store::foldJournal(r.entries);
  r.title = store::journalTitle(ctx.store(), keyring, journal);
  return r;
}

std::string nameOf(Context& ctx, const Reading& r, const crypto::PublicKey& who) {
  return terminalSafe(store::displayName(r.view, who, ctx.unlock().identity.publicKey()), Newlines::ESCAPE);
}

constexpr size_t ENTRY_MATCHES_MAX = 8;

protocol::Entry findEntry(Context& ctx, const std::string& id) {
  if (id.size() < 6 || id.size() > 64 || !tryFromHex(id.substr(0, id.size() & ~size_t{1}))) {
    throw Error(ErrorKind::USAGE, "'" + id + "' is not an entry id",
                "give the id shown in brackets by 'kith read' or 'kith help' (at least 6 characters)");
  }
  auto found = ctx.store().findEntries(id, ENTRY_MATCHES_MAX);
  if (found.empty()) throw Error(ErrorKind::NOT_FOUND, "there is no entry " + id + " in this home", "see 'kith read'");
  if (found.size() > 1) {
    throw Error(ErrorKind::USAGE, "'" + id + "' matches " + std::to_string(found.size()) + " entries",
                "give more characters of the id");
  }
  auto entry = ctx.store().entryById(found[0]);
  KITH_ASSERT(entry.has_value());
  return std::move(*entry);
}

store::Writer writerOf(Context& ctx) {
  const Unlocked& me = ctx.unlock();
  return store::Writer{ctx.store(), me.keyring(), me.name};
}

void publishNameIfMissing(Context& ctx, const store::JournalId& journal) {
  store::publishNameIfMissing(writerOf(ctx), journal);
}

ReadMarks loadReadMarks(Context& ctx, const store::JournalId& journal) {
  ReadMarks marks;
  json all = loadAllMarks(ctx);
  auto it = all.find(toHex(journal));
  if (it == all.end() || !it->is_object()) return marks;
  for (const auto& [author, seq] : it->items()) {
    auto key = tryFromHex(author);
    if (!key || key->size() != 32 || !seq.is_number_unsigned()) continue;
    crypto::PublicKey k;
    std::copy(key->begin(), key->end(), k.begin());
    marks[k] = seq.get<uint64_t>();
  }
  return marks;
}

void saveReadMarks(Context& ctx, const store::JournalId& journal, const ReadMarks& marks) {
  json all = loadAllMarks(ctx);
  json j = json::object();
  for (const auto& [author, seq] : marks) j[toHex(author)] = seq;
  all[toHex(journal)] = j;
  std::string text = all.dump();
  const Unlocked& me = ctx.unlock();
  try {
    writeFileAtomic(readMarksPath(ctx.home()),
                    crypto::aeadSeal(me.storageKey.view(), asBytes(text), asBytes(READ_MARKS_AD)), 0600);
  } catch (const Error& e) {
    // What was read stays shown; only the unread count will be off (a full disk, a read-only home).
    if (ctx.options().verbose) {
      std::cerr << "kith: note: could not remember what you have read (" << terminalSafe(e.what(), Newlines::ESCAPE)
                << ")\n";
    }
  }
}

bool isUnread(const ReadMarks& marks, const protocol::Entry& e, const protocol::Body& body,
              const crypto::PublicKey& me) {
  if (e.author == me) return false;
  if (body.kind != protocol::Kind::UPDATE && body.kind != protocol::Kind::COMMENT &&
      body.kind != protocol::Kind::WISH && body.kind != protocol::Kind::ASK) {
    return false;
  }
  auto it = marks.find(e.author);
  return it == marks.end() || e.seq > it->second;
}

void requireActiveMember(Context& ctx, const store::JournalId& journal) {
  store::requireActiveMember(ctx.store(), ctx.unlock().identity.publicKey(), journal);
}

std::string whenText(int64_t ms) { return ms == 0 ? std::string("any time") : localTime(ms); }

std::string humanSize(uint64_t bytes) {
  char buf[32];
  if (bytes < 1000) return std::to_string(bytes) + " bytes";
  if (bytes < 1000 * 1000) {
    std::snprintf(buf, sizeof buf, "%.0f kB", static_cast<double>(bytes) / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  }
  return buf;
}

}  // namespace kith::cli
