// The commands that write to a journal's timeline and read it: post, read, comment, heart.
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "cli/commands.h"

namespace kith::cli {
namespace {

using nlohmann::json;
using protocol::Body;
using protocol::Kind;

std::string readText(const std::string& arg) {
  if (arg != "-") return arg;
  // Read at most one byte past the limit: enough to say it is too long without reading it all.
  std::string text;
  char buf[4096];
  while (text.size() <= protocol::TEXT_BYTES_MAX) {
    std::cin.read(buf, sizeof buf);
    text.append(buf, static_cast<size_t>(std::cin.gcount()));
    if (!std::cin) break;
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

json entryJson(const store::ReadEntry& r) {
  const protocol::Entry& e = r.entry;
  json j = {{"id", toHex(e.id)}, {"journal", toHex(e.journal)},    {"author", toHex(e.author)},
            {"seq", e.seq},      {"time", isoTime(e.timestampMs)}, {"timestamp_ms", e.timestampMs},
            {"epoch", e.epoch}};
  if (r.body) {
    j["kind"] = protocol::kindName(r.body->kind);
    j["text"] = r.body->text;
    json refs = json::array();
    for (const auto& ref : r.body->refs) refs.push_back(toHex(ref));
    j["refs"] = refs;
  } else if (!e.body.empty()) {
    j["kind"] = "unreadable";
    j["text"] = nullptr;
  } else {
    j["kind"] = "control";
    j["text"] = nullptr;
  }
  switch (e.control.type) {
    case protocol::Control::Type::CREATE:
      j["control"] = {{"type", "create"}};
      break;
    case protocol::Control::Type::ADD_MEMBER:
      j["control"] = {
          {"type", "add-member"}, {"member", toHex(e.control.member)}, {"role", protocol::roleName(e.control.role)}};
      break;
    case protocol::Control::Type::REMOVE_MEMBER:
      j["control"] = {
          {"type", "remove-member"}, {"member", toHex(e.control.member)}, {"new_epoch", e.control.newEpoch}};
      break;
    case protocol::Control::Type::NONE:
      break;
  }
  return j;
}

void cmdPost(Context& ctx, const std::optional<std::string>& journalArg, const std::string& textArg) {
  std::string text = readText(textArg);
  if (textArg == "-" && text.size() > protocol::TEXT_BYTES_MAX) {
    throw Error(ErrorKind::INPUT,
                "the text on stdin is longer than the limit of " + std::to_string(protocol::TEXT_BYTES_MAX) + " bytes",
                "shorten it or split it into several posts");
  }
  requireSize(text, protocol::TEXT_BYTES_MAX, "text", "shorten it or split it into several posts");
  requireText(text, "text");
  if (text.empty())
    throw Error(ErrorKind::USAGE, "there is nothing to post", "give the text, or - to read it from stdin");
  store::JournalId journal = ctx.journal(journalArg);
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  protocol::Entry e = store::post(ctx.store(), keyring, journal, Body{Kind::UPDATE, text, {}});
  ctx.print({{"id", toHex(e.id)}, {"journal", toHex(journal)}, {"seq", e.seq}, {"time", isoTime(e.timestampMs)}},
            "Posted " + toHex(e.id).substr(0, 12) + " to journal " + toHex(journal).substr(0, 16));
}

void cmdRead(Context& ctx, const std::optional<std::string>& journalArg) {
  store::JournalId journal = ctx.journal(journalArg);
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  store::Store& s = ctx.store();
  // A damaged entry is skipped with a warning; a timeline whose rows disagree with the journal's
  // count is refused (readJournal throws) rather than shown in part.
  std::vector<store::DamagedEntry> skipped;
  auto entries = store::readJournal(s, keyring, journal, &skipped);
  for (const auto& d : skipped) {
    std::cerr << "kith: warning: entry " << (d.id ? shortHex(*d.id) + "\u2026" : std::string("(id unreadable)"))
              << " is damaged and was skipped";
    if (ctx.options().verbose) std::cerr << " (" << terminalSafe(d.reason, Newlines::ESCAPE) << ")";
    std::cerr << "; run 'kith check'\n";
  }
  auto who = [&](const crypto::PublicKey& author) {
    return author == me.identity.publicKey() ? std::string("you") : shortHex(author, 8);
  };

  // Comments and hearts hang under the entry they refer to.
  std::map<protocol::EntryId, std::vector<const store::ReadEntry*>> comments, hearts;
  for (const auto& r : entries) {
    if (!r.body || r.body->refs.empty()) continue;
    if (r.body->kind == Kind::COMMENT) comments[r.body->refs[0]].push_back(&r);
    if (r.body->kind == Kind::HEART) hearts[r.body->refs[0]].push_back(&r);
  }

  json list = json::array();
  std::ostringstream text;
  auto title = store::journalTitle(s, keyring, journal);
  text << "# " << (title ? terminalSafe(*title) : "(title unreadable)") << "  [" << toHex(journal).substr(0, 16)
       << "]\n";
  size_t shown = 0;
  for (const auto& r : entries) {
    json j = entryJson(r);
    const protocol::Entry& e = r.entry;
    json commentList = json::array();
    for (const auto* c : comments[e.id]) {
      commentList.push_back({{"id", toHex(c->entry.id)},
                             {"author", toHex(c->entry.author)},
                             {"time", isoTime(c->entry.timestampMs)},
                             {"text", c->body->text}});
    }
    json heartedBy = json::array();
    std::set<crypto::PublicKey> heartAuthors;
    for (const auto* h : hearts[e.id]) heartAuthors.insert(h->entry.author);
    for (const auto& a : heartAuthors) heartedBy.push_back(toHex(a));
    if (r.body && (r.body->kind == Kind::UPDATE || r.body->kind == Kind::COMMENT)) {
      j["comments"] = commentList;
      j["hearts"] = heartAuthors.size();
      j["hearted_by"] = heartedBy;
    }
    list.push_back(j);

    if (r.body && r.body->kind != Kind::UPDATE) continue;  // shown under their update, or not at all
    if (!r.body) {
      if (e.body.empty()) continue;  // membership changes are listed by 'kith members'
      text << "\n"
           << localTime(e.timestampMs) << "  " << who(e.author)
           << "\n  (encrypted for an epoch this node has no key for)\n";
      ++shown;
      continue;
    }
    text << "\n" << localTime(e.timestampMs) << "  " << who(e.author) << "  [" << shortHex(e.id) << "]\n";
    std::istringstream lines(terminalSafe(r.body->text));
    for (std::string line; std::getline(lines, line);) text << "  " << line << "\n";
    if (!heartAuthors.empty()) {
      text << "  \u2665 " << heartAuthors.size() << " (";
      bool first = true;
      for (const auto& a : heartAuthors) {
        text << (first ? "" : ", ") << who(a);
        first = false;
      }
      text << ")\n";
    }
    for (const auto* c : comments[e.id]) {
      text << "  > " << who(c->entry.author) << ", " << localTime(c->entry.timestampMs) << ": ";
      std::istringstream clines(terminalSafe(c->body->text));
      bool firstLine = true;
      for (std::string line; std::getline(clines, line);) {
        text << (firstLine ? "" : "    ") << line << "\n";
        firstLine = false;
      }
    }
    ++shown;
  }
  if (shown == 0) text << "\nNo updates yet: post one with 'kith post \"TEXT\"'.\n";
  ctx.print(list, text.str());
}

constexpr size_t ENTRY_MATCHES_MAX = 8;

// The entry named by a hex id or a unique prefix of one (at least 6 characters).
protocol::Entry findEntry(Context& ctx, const std::string& id) {
  if (id.size() < 6 || id.size() > 64 || !tryFromHex(id.substr(0, id.size() & ~size_t{1}))) {
    throw Error(ErrorKind::USAGE, "'" + id + "' is not an entry id",
                "give the id shown in brackets by 'kith read' (at least 6 characters)");
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

void react(Context& ctx, const std::string& entryArg, Kind kind, const std::string& text) {
  protocol::Entry target = findEntry(ctx, entryArg);
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  auto key = ctx.store().epochKey(target.journal, target.epoch, keyring.storageKey);
  std::optional<Body> body = key ? protocol::openBody(target, key->view()) : std::nullopt;
  if (!body || (body->kind != Kind::UPDATE && body->kind != Kind::COMMENT)) {
    throw Error(ErrorKind::INPUT, "that entry is not an update or a comment you can read",
                "choose an update's id from 'kith read'");
  }
  protocol::Entry e = store::post(ctx.store(), keyring, target.journal, Body{kind, text, {target.id}});
  const char* what = kind == Kind::HEART ? "Hearted" : "Commented on";
  ctx.print({{"id", toHex(e.id)},
             {"journal", toHex(e.journal)},
             {"seq", e.seq},
             {"kind", protocol::kindName(kind)},
             {"ref", toHex(target.id)}},
            std::string(what) + " " + toHex(target.id).substr(0, 12) + " (" + toHex(e.id).substr(0, 12) + ")");
}

void cmdComment(Context& ctx, const std::string& entryArg, const std::string& text) {
  if (text.empty()) throw Error(ErrorKind::USAGE, "the comment is empty", "write something");
  if (text.size() > protocol::TEXT_BYTES_MAX) {
    throw Error(ErrorKind::INPUT,
                "the comment is " + std::to_string(text.size()) + " bytes, over the limit of " +
                    std::to_string(protocol::TEXT_BYTES_MAX),
                "shorten it");
  }
  requireText(text, "comment");
  react(ctx, entryArg, Kind::COMMENT, text);
}

struct PostArgs {
  std::optional<std::string> journal;
  std::string text;
};

struct CommentArgs {
  std::string entry;
  std::string text;
};

}  // namespace

void addPostReadCommands(Commands& commands) {
  commands.add<PostArgs>(
      "post", "Post an update to a journal",
      [](CLI::App& cmd, PostArgs& a) {
        addJournalOption(cmd, a.journal);
        cmd.add_option("TEXT", a.text, "The update's text, or - to read it from stdin")->required();
      },
      [](Context& ctx, const PostArgs& a) { cmdPost(ctx, a.journal, a.text); });
  commands.add<std::optional<std::string>>(
      "read", "Read a journal's timeline",
      [](CLI::App& cmd, std::optional<std::string>& journal) { addJournalOption(cmd, journal); }, cmdRead);
  commands.add<CommentArgs>(
      "comment", "Comment on an update",
      [](CLI::App& cmd, CommentArgs& a) {
        cmd.add_option("ENTRY_ID", a.entry, "The update's id (or its first characters) from 'kith read'")->required();
        cmd.add_option("TEXT", a.text, "The comment")->required();
      },
      [](Context& ctx, const CommentArgs& a) { cmdComment(ctx, a.entry, a.text); });
  commands.add<std::string>(
      "heart", "Send a heart to an update",
      [](CLI::App& cmd, std::string& entry) {
        cmd.add_option("ENTRY_ID", entry, "The update's id (or its first characters) from 'kith read'")->required();
      },
      [](Context& ctx, const std::string& entry) { react(ctx, entry, Kind::HEART, ""); });
}

}  // namespace kith::cli
