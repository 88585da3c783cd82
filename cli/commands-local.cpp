// The commands that work on one node's home: identity, journals, posting and reading.
#include <unistd.h>

#include <iostream>
#include <map>
#include <set>
#include <iterator>
#include <sstream>

#include "cli/commands.h"
#include "cli/config.h"
#include "cli/passphrase.h"
#include "crypto/fingerprint.h"

namespace kith::cli {
namespace {

using nlohmann::json;
using protocol::Body;
using protocol::Kind;

constexpr size_t TITLE_BYTES_MAX = 200;
constexpr size_t NAME_BYTES_MAX = 100;

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

void requireSize(const std::string& text, size_t max, const char* what, const char* hint) {
  if (text.size() > max) {
    throw Error(ErrorKind::INPUT,
                std::string("the ") + what + " is " + std::to_string(text.size()) + " bytes, over the limit of " +
                    std::to_string(max),
                hint);
  }
}

json entryJson(const store::ReadEntry& r) {
  const protocol::Entry& e = r.entry;
  json j = {{"id", toHex(e.id)},
            {"journal", toHex(e.journal)},
            {"author", toHex(e.author)},
            {"seq", e.seq},
            {"time", isoTime(e.timestampMs)},
            {"timestamp_ms", e.timestampMs},
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
    case protocol::Control::Type::CREATE: j["control"] = {{"type", "create"}}; break;
    case protocol::Control::Type::ADD_MEMBER:
      j["control"] = {{"type", "add-member"}, {"member", toHex(e.control.member)},
                      {"role", protocol::roleName(e.control.role)}};
      break;
    case protocol::Control::Type::REMOVE_MEMBER:
      j["control"] = {{"type", "remove-member"}, {"member", toHex(e.control.member)},
                      {"new_epoch", e.control.newEpoch}};
      break;
    case protocol::Control::Type::NONE: break;
  }
  return j;
}

void cmdInit(Context& ctx, const std::string& name, bool noPassphrase) {
  const store::Home& home = ctx.home();
  requireSize(name, NAME_BYTES_MAX, "name", "choose a shorter name");
  requireText(name, "name");
  if (home.hasIdentity()) {
    throw Error(ErrorKind::CONFLICT, "this home already has an identity (" + home.keyFilePath() + ")",
                "use it as it is, or choose another folder with --home DIR");
  }
  std::optional<crypto::SecretBuffer> passphrase;
  if (!noPassphrase) {
    passphrase = readPassphrase("Choose a passphrase for your kith identity: ", true);
    if (!passphrase) {
      throw Error(ErrorKind::USAGE, "no passphrase to seal the new identity with",
                  "set KITH_PASSPHRASE, run on a terminal, or use --no-passphrase for a headless node");
    }
  }
  crypto::Identity id = crypto::Identity::generate();
  Bytes file = crypto::writeKeyFile(id, name, passphrase ? std::optional<ByteView>(passphrase->view()) : std::nullopt);
  // The home is made in a temporary folder and renamed into place: a full disk or a crash at any
  // point leaves no half-made home, and the next 'kith init' starts clean.
  store::buildHomeAtomically(home.path(), [&](const store::Home& staging) {
    staging.writeKeyFile(file);
    staging.createStore();
  });
  std::string fp = crypto::fingerprint(id.publicKey());
  std::ostringstream text;
  text << "Created your kith identity in " << home.path() << "\n"
       << "  id:          " << toHex(id.publicKey()) << "\n"
       << "  fingerprint: " << fp << "\n";
  if (!passphrase) {
    text << "Note: the key file is NOT encrypted (--no-passphrase); it is readable only by you (mode 0600).\n";
  }
  text << "Next: create a journal with 'kith journal create \"TITLE\"'.";
  ctx.print({{"home", home.path()}, {"id", toHex(id.publicKey())}, {"fingerprint", fp}, {"name", name},
             {"sealed", passphrase.has_value()}},
            text.str());
}

void cmdId(Context& ctx) {
  crypto::KeyFileInfo info = ctx.keyInfo();
  std::string fp = crypto::fingerprint(info.publicKey);
  // The name is inside the key file: shown when it opens without asking.
  std::optional<std::string> name;
  if (!info.sealed || std::getenv("KITH_PASSPHRASE") != nullptr) name = ctx.unlock().name;
  std::ostringstream text;
  if (name && !name->empty()) text << "name:        " << *name << "\n";
  text << "id:          " << toHex(info.publicKey) << "\n"
       << "fingerprint: " << fp;
  json j = {{"id", toHex(info.publicKey)}, {"fingerprint", fp}, {"sealed", info.sealed}};
  j["name"] = name ? json(*name) : json(nullptr);
  ctx.print(j, text.str());
}

void cmdJournalCreate(Context& ctx, const std::string& title) {
  requireSize(title, TITLE_BYTES_MAX, "title", "choose a shorter title");
  requireText(title, "title");
  if (title.empty()) throw Error(ErrorKind::USAGE, "the title is empty", "give the journal a title");
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  store::JournalId id = store::createJournal(ctx.store(), keyring, title);
  ctx.print({{"id", toHex(id)}, {"title", title}},
            "Created journal " + toHex(id) + "\n  title: " + title +
                "\nNext: post an update with 'kith post \"TEXT\"'.");
}

void cmdJournalList(Context& ctx) {
  store::Store& s = ctx.store();
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  json list = json::array();
  std::ostringstream text;
  auto journals = s.journals();
  for (const auto& j : journals) {
    auto title = store::journalTitle(s, keyring, j.id);
    auto member = s.member(j.id, me.identity.publicKey());
    size_t members = 0;
    for (const auto& m : s.members(j.id)) members += m.active ? 1 : 0;
    std::string role = member && member->active ? protocol::roleName(member->role) : "none";
    list.push_back({{"id", toHex(j.id)},
                    {"title", title ? json(*title) : json(nullptr)},
                    {"owner", toHex(j.owner)},
                    {"role", role},
                    {"members", members},
                    {"entries", j.entryCount},
                    {"epoch", j.epoch},
                    {"last_update", isoTime(j.lastEntryMs)}});
    text << toHex(j.id).substr(0, 16) << "  " << (title ? *title : "(title unreadable)") << "\n    " << role
         << ", " << members << (members == 1 ? " member, " : " members, ") << j.entryCount
         << (j.entryCount == 1 ? " entry" : " entries") << ", last update " << localTime(j.lastEntryMs) << "\n";
  }
  if (journals.empty()) text << "No journals yet: create one with 'kith journal create \"TITLE\"'.";
  ctx.print(list, text.str());
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
  if (text.empty()) throw Error(ErrorKind::USAGE, "there is nothing to post", "give the text, or - to read it from stdin");
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
    if (ctx.options().verbose) std::cerr << " (" << d.reason << ")";
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
  text << "# " << (title ? *title : "(title unreadable)") << "  [" << toHex(journal).substr(0, 16) << "]\n";
  size_t shown = 0;
  for (const auto& r : entries) {
    json j = entryJson(r);
    const protocol::Entry& e = r.entry;
    json commentList = json::array();
    for (const auto* c : comments[e.id]) {
      commentList.push_back({{"id", toHex(c->entry.id)}, {"author", toHex(c->entry.author)},
                             {"time", isoTime(c->entry.timestampMs)}, {"text", c->body->text}});
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
      text << "\n" << localTime(e.timestampMs) << "  " << who(e.author)
           << "\n  (encrypted for an epoch this node has no key for)\n";
      ++shown;
      continue;
    }
    text << "\n" << localTime(e.timestampMs) << "  " << who(e.author) << "  [" << shortHex(e.id) << "]\n";
    std::istringstream lines(r.body->text);
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
      std::istringstream clines(c->body->text);
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

void cmdStatus(Context& ctx) {
  const store::Home& home = ctx.home();
  crypto::KeyFileInfo info = ctx.keyInfo();
  store::Store& s = ctx.store();
  auto journals = s.journals();
  uint64_t entries = 0;
  for (const auto& j : journals) entries += j.entryCount;
  std::string fp = crypto::fingerprint(info.publicKey);
  json j = {{"home", home.path()},
            {"id", toHex(info.publicKey)},
            {"fingerprint", fp},
            {"sealed", info.sealed},
            {"journals", journals.size()},
            {"entries", entries},
            {"store_map_bytes", s.mapBytes()}};
  Config config = Config::load(home);
  std::optional<std::string> serving = servingAddress(home);
  j["node"] = serving ? "serving" : "stopped";
  j["listen"] = serving ? json(*serving) : json(nullptr);
  j["peers"] = config.peers.size();
  j["follows"] = config.follows.size();
  std::ostringstream text;
  text << "home:        " << home.path() << "\n"
       << "id:          " << toHex(info.publicKey) << "\n"
       << "fingerprint: " << fp << "\n"
       << "key file:    " << (info.sealed ? "sealed with a passphrase" : "NOT encrypted (--no-passphrase)") << "\n"
       << "journals:    " << journals.size() << " (" << entries << (entries == 1 ? " entry" : " entries") << ")\n"
       << "peers:       " << config.peers.size() << " known, " << config.follows.size() << " followed journal(s)\n"
       << "node:        "
       << (serving ? "serving on " + *serving : std::string("not running (start it with 'kith serve')"));
  ctx.print(j, text.str());
}

}  // namespace

void addLocalCommands(CLI::App& app, Action& action) {
  {
    auto* cmd = app.add_subcommand("init", "Create this home's identity (a key pair sealed with a passphrase)");
    auto name = std::make_shared<std::string>();
    auto noPassphrase = std::make_shared<bool>(false);
    cmd->add_option("--name", *name, "Your name as friends know you");
    cmd->add_flag("--no-passphrase", *noPassphrase,
                  "Store the key unencrypted (mode 0600), for a headless node");
    cmd->callback([&action, name, noPassphrase] {
      action = [name, noPassphrase](Context& ctx) { cmdInit(ctx, *name, *noPassphrase); };
    });
  }
  {
    auto* cmd = app.add_subcommand("id", "Show your public key and its fingerprint");
    cmd->callback([&action] { action = [](Context& ctx) { cmdId(ctx); }; });
  }
  {
    auto* journal = app.add_subcommand("journal", "Create and list journals");
    journal->require_subcommand(1);
    auto* create = journal->add_subcommand("create", "Create a journal that you own");
    auto title = std::make_shared<std::string>();
    create->add_option("TITLE", *title, "The journal's title (encrypted like everything else)")->required();
    create->callback([&action, title] { action = [title](Context& ctx) { cmdJournalCreate(ctx, *title); }; });
    auto* list = journal->add_subcommand("list", "List the journals this home holds");
    list->callback([&action] { action = [](Context& ctx) { cmdJournalList(ctx); }; });
  }
  {
    auto* cmd = app.add_subcommand("post", "Post an update to a journal");
    auto journal = std::make_shared<std::optional<std::string>>();
    auto text = std::make_shared<std::string>();
    cmd->add_option("--journal", *journal, "Journal id (or a unique prefix); optional with one journal");
    cmd->add_option("TEXT", *text, "The update's text, or - to read it from stdin")->required();
    cmd->callback([&action, journal, text] {
      action = [journal, text](Context& ctx) { cmdPost(ctx, *journal, *text); };
    });
  }
  {
    auto* cmd = app.add_subcommand("read", "Read a journal's timeline");
    auto journal = std::make_shared<std::optional<std::string>>();
    cmd->add_option("--journal", *journal, "Journal id (or a unique prefix); optional with one journal");
    cmd->callback([&action, journal] { action = [journal](Context& ctx) { cmdRead(ctx, *journal); }; });
  }
  {
    auto* cmd = app.add_subcommand("status", "Show this node's identity, journals and state");
    cmd->callback([&action] { action = [](Context& ctx) { cmdStatus(ctx); }; });
  }
}

}  // namespace kith::cli
