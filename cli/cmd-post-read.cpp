// The commands that write to a journal's timeline and read it: post (with photos), read, comment,
// heart, wish, edit, delete, name and photo. The journal as read comes from store/timeline.h.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cli/reading.h"

namespace kith::cli {
namespace {

using nlohmann::json;
using protocol::Attachment;
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

std::string baseName(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

store::Photo readPhotoFile(const std::string& path) {
  std::string name = baseName(path);
  auto bytes =
      readSmallFile("the photo " + name, path, protocol::ATTACHMENT_BYTES_MAX,
                    "choose a photo of at most " + std::to_string(protocol::ATTACHMENT_BYTES_MAX / (1024 * 1024)) +
                        " MiB, or make it smaller first");
  if (!bytes) throw Error(ErrorKind::NOT_FOUND, "there is no file " + path, "check the photo's path");
  if (bytes->empty()) throw Error(ErrorKind::INPUT, "the photo " + name + " is empty", "choose another file");
  return store::Photo{name, std::move(*bytes)};
}

std::vector<store::Photo> readPhotoFiles(const std::vector<std::string>& paths) {
  store::requirePhotoCount(paths.size());
  std::vector<store::Photo> out;
  for (const auto& p : paths) out.push_back(readPhotoFile(p));
  return out;
}

// "Storing NAME: 3/12", redrawn in place on a terminal; nothing otherwise.
store::PhotoProgress photoProgress(Context& ctx) {
  if (::isatty(2) == 0 || ctx.options().json) return {};
  return [](const std::string& name, size_t done, size_t total) {
    std::cerr << "\rStoring " << terminalSafe(name, Newlines::ESCAPE) << ": " << done << "/" << total;
    if (done == total) std::cerr << "\n";
  };
}

// What people call an entry of this kind.
std::string kindWord(Kind kind) {
  return kind == Kind::WISH ? "well-wish" : kind == Kind::ASK ? "help request" : protocol::kindName(kind);
}

std::string photoId(const Attachment& a) { return toHex(a.hash).substr(0, 12); }

json attachmentsJson(const std::vector<Attachment>& list) {
  json out = json::array();
  for (const auto& a : list) {
    out.push_back(
        {{"id", photoId(a)}, {"name", a.name}, {"type", a.mime}, {"size", a.size}, {"pieces", a.chunks.size()}});
  }
  return out;
}

json keysJson(const Reading& r, const std::set<crypto::PublicKey>& keys) {
  json out = json::array();
  for (const auto& k : keys) out.push_back(toHex(k));
  (void)r;
  return out;
}

void printLines(std::ostringstream& out, const std::string& text, const char* indent) {
  std::istringstream lines(terminalSafe(text));
  for (std::string line; std::getline(lines, line);) out << indent << line << "\n";
}

void printPhotos(std::ostringstream& out, const std::vector<Attachment>& list, const char* indent) {
  for (const auto& a : list) {
    out << indent << "[photo " << photoId(a) << "] " << terminalSafe(a.name, Newlines::ESCAPE) << ", "
        << humanSize(a.size) << "\n";
  }
}

std::string heartsLine(Context& ctx, const Reading& r, const std::set<crypto::PublicKey>& hearts) {
  std::string s = "\u2665 " + std::to_string(hearts.size()) + " (";
  bool first = true;
  for (const auto& a : hearts) {
    s += (first ? "" : ", ") + nameOf(ctx, r, a);
    first = false;
  }
  return s + ")";
}

void cmdRead(Context& ctx, const std::optional<std::string>& journalArg, bool unreadOnly) {
  store::JournalId journal = ctx.journal(journalArg);
  Reading r = readJournalView(ctx, journal);
  const crypto::PublicKey me = ctx.unlock().identity.publicKey();
  ReadMarks marks = loadReadMarks(ctx, journal);
  std::set<protocol::EntryId> unread;
  ReadMarks seen = marks;
  for (const auto& e : r.entries) {
    seen[e.entry.author] = std::max(seen[e.entry.author], e.entry.seq);
    if (e.body && isUnread(marks, e.entry, *e.body, me)) unread.insert(e.entry.id);
  }
  auto isNew = [&](const protocol::EntryId& id) { return unread.count(id) > 0; };

  std::map<protocol::EntryId, const store::PostView*> posts;
  std::map<protocol::EntryId, const store::CommentView*> comments;
  std::map<protocol::EntryId, const store::RequestView*> requests;
  for (const auto* list : {&r.view.updates, &r.view.wishes}) {
    for (const auto& p : *list) {
      posts[p.id] = &p;
      for (const auto& c : p.comments) comments[c.id] = &c;
    }
  }
  for (const auto& q : r.view.requests) requests[q.id] = &q;

  // JSON: the entries in timeline order, each with what the journal as read says of it; the same
  // on every member's node that holds the same entries (names are not "you", nothing unread is
  // marked: --unread chooses the entries instead).
  json list = json::array();
  for (const auto& e : r.entries) {
    if (e.body && e.body->kind == Kind::CHUNK) continue;
    if (unreadOnly && !isNew(e.entry.id)) continue;
    const protocol::Entry& x = e.entry;
    json j = {{"id", toHex(x.id)},
              {"journal", toHex(x.journal)},
              {"author", toHex(x.author)},
              {"author_name", store::displayName(r.view, x.author, std::nullopt)},
              {"seq", x.seq},
              {"time", isoTime(x.timestampMs)},
              {"timestamp_ms", x.timestampMs},
              {"epoch", x.epoch}};
    if (e.body) {
      j["kind"] = protocol::kindName(e.body->kind);
      j["text"] = e.body->text;
      json refs = json::array();
      for (const auto& ref : e.body->refs) refs.push_back(toHex(ref));
      j["refs"] = refs;
      if (e.body->kind == Kind::HEART) j["heart_off"] = e.body->heartOff;
    } else {
      j["kind"] = x.body.empty() ? "control" : "unreadable";
      j["text"] = nullptr;
    }
    auto post = posts.find(x.id);
    auto comment = comments.find(x.id);
    if (post != posts.end() || comment != comments.end()) {
      const std::set<crypto::PublicKey>& hearts = post != posts.end() ? post->second->hearts : comment->second->hearts;
      j["text"] = post != posts.end() ? post->second->text : comment->second->text;
      j["edited"] = post != posts.end() ? post->second->edited : comment->second->edited;
      j["attachments"] =
          attachmentsJson(post != posts.end() ? post->second->attachments : comment->second->attachments);
      j["hearts"] = hearts.size();
      j["hearted_by"] = keysJson(r, hearts);
      json cl = json::array();
      if (post != posts.end()) {
        for (const auto& c : post->second->comments) {
          cl.push_back({{"id", toHex(c.id)},
                        {"author", toHex(c.author)},
                        {"author_name", store::displayName(r.view, c.author, std::nullopt)},
                        {"time", isoTime(c.timeMs)},
                        {"text", c.text},
                        {"edited", c.edited},
                        {"attachments", attachmentsJson(c.attachments)}});
        }
      }
      j["comments"] = cl;
    } else if (e.body &&
               (e.body->kind == Kind::UPDATE || e.body->kind == Kind::COMMENT || e.body->kind == Kind::WISH)) {
      j["deleted"] = true;
    }
    auto req = requests.find(x.id);
    if (req != requests.end()) {
      const store::RequestView& q = *req->second;
      json holders = json::array(), waiting = json::array();
      for (const auto& k : q.holders) holders.push_back(toHex(k));
      for (const auto& k : q.waiting) waiting.push_back(toHex(k));
      j["text"] = q.text;
      j["request"] = {{"state", store::requestStateName(q.state)},
                      {"when", q.whenMs == 0 ? json(nullptr) : json(isoTime(q.whenMs))},
                      {"slots", q.slots},
                      {"holders", holders},
                      {"waiting", waiting}};
    }
    if (x.control.type == protocol::Control::Type::ADD_MEMBER) {
      j["control"] = {
          {"type", "add-member"}, {"member", toHex(x.control.member)}, {"role", protocol::roleName(x.control.role)}};
    } else if (x.control.type == protocol::Control::Type::REMOVE_MEMBER) {
      j["control"] = {
          {"type", "remove-member"}, {"member", toHex(x.control.member)}, {"new_epoch", x.control.newEpoch}};
    } else if (x.control.type == protocol::Control::Type::CREATE) {
      j["control"] = {{"type", "create"}};
    }
    list.push_back(j);
  }

  std::ostringstream text;
  text << "# " << (r.title ? terminalSafe(*r.title, Newlines::ESCAPE) : "(title unreadable)") << "  ["
       << toHex(journal).substr(0, 16) << "]\n";
  size_t shown = 0;
  for (const auto& p : r.view.updates) {
    bool anyNew = isNew(p.id);
    for (const auto& c : p.comments) anyNew = anyNew || isNew(c.id);
    if (unreadOnly && !anyNew) continue;
    text << "\n"
         << localTime(p.timeMs) << "  " << nameOf(ctx, r, p.author) << "  [" << shortHex(p.id) << "]"
         << (isNew(p.id) ? "  (new)" : "") << "\n";
    printLines(text, p.text, "  ");
    printPhotos(text, p.attachments, "  ");
    if (p.edited) text << "  (edited " << localTime(p.editedMs) << ")\n";
    if (!p.hearts.empty()) text << "  " << heartsLine(ctx, r, p.hearts) << "\n";
    for (const auto& c : p.comments) {
      text << "  > " << nameOf(ctx, r, c.author) << ", " << localTime(c.timeMs) << " [" << shortHex(c.id, 8) << "]"
           << (c.edited ? " (edited)" : "") << (isNew(c.id) ? " (new)" : "") << ": ";
      std::istringstream clines(terminalSafe(c.text));
      bool firstLine = true;
      for (std::string line; std::getline(clines, line);) {
        text << (firstLine ? "" : "    ") << line << "\n";
        firstLine = false;
      }
      if (firstLine) text << "\n";
      printPhotos(text, c.attachments, "    ");
      if (!c.hearts.empty()) text << "    " << heartsLine(ctx, r, c.hearts) << "\n";
    }
    ++shown;
  }
  if (r.view.unreadable > 0 && !unreadOnly) {
    text << "\n(" << r.view.unreadable
         << " entries are encrypted for a time this node has no key for: written before you joined or after "
            "you were removed)\n";
  }
  bool requestsShown = false;
  for (const auto& q : r.view.requests) {
    if (unreadOnly && !isNew(q.id)) continue;
    if (q.state != store::RequestState::OPEN && !unreadOnly) continue;
    if (!requestsShown) text << "\nHelp wanted (see 'kith help'):\n";
    requestsShown = true;
    text << "  [" << shortHex(q.id) << "] " << terminalSafe(q.text, Newlines::ESCAPE) << " \u2014 "
         << whenText(q.whenMs) << " \u2014 " << q.holders.size() << " of " << q.slots << " taken"
         << (isNew(q.id) ? "  (new)" : "") << "\n";
    ++shown;
  }
  bool wishesShown = false;
  for (const auto& w : r.view.wishes) {
    if (unreadOnly && !isNew(w.id)) continue;
    if (!wishesShown) text << "\nWell-wishes:\n";
    wishesShown = true;
    text << "  " << nameOf(ctx, r, w.author) << ", " << localTime(w.timeMs) << " [" << shortHex(w.id, 8) << "]"
         << (w.edited ? " (edited)" : "") << ": ";
    std::istringstream wl(terminalSafe(w.text));
    bool firstLine = true;
    for (std::string line; std::getline(wl, line);) {
      text << (firstLine ? "" : "    ") << line << "\n";
      firstLine = false;
    }
    if (firstLine) text << "\n";
    if (!w.hearts.empty()) text << "    " << heartsLine(ctx, r, w.hearts) << "\n";
    ++shown;
  }
  if (shown == 0) {
    text << (unreadOnly ? "\nNothing new since you last read this journal.\n"
                        : "\nNo updates yet: post one with 'kith post \"TEXT\"'.\n");
  }
  ctx.print(list, text.str());
  saveReadMarks(ctx, journal, seen);
}

// Prints what was written and, when no node runs for this home, that it waits for one.
void printWritten(Context& ctx, json j, const std::string& text) {
  std::string note = ctx.deliveryNote();
  j["queued"] = !note.empty();
  ctx.print(j, note.empty() ? text : text + "\n" + note);
}

void cmdPost(Context& ctx, const std::optional<std::string>& journalArg, const std::string& textArg,
             const std::vector<std::string>& photos) {
  std::string text = readText(textArg);
  if (textArg == "-" && text.size() > protocol::TEXT_BYTES_MAX) {
    throw Error(ErrorKind::INPUT,
                "the text on stdin is longer than the limit of " + std::to_string(protocol::TEXT_BYTES_MAX) + " bytes",
                "shorten it or split it into several posts");
  }
  std::vector<store::Photo> files = readPhotoFiles(photos);
  store::JournalId journal = ctx.journal(journalArg);
  store::Keyring keyring = ctx.unlock().keyring();
  store::Posted posted = store::postUpdate(writerOf(ctx), journal, text, files, photoProgress(ctx));
  const protocol::Entry& e = posted.entry;
  auto title = store::journalTitle(ctx.store(), keyring, journal);
  printWritten(ctx,
               {{"id", toHex(e.id)},
                {"journal", toHex(journal)},
                {"seq", e.seq},
                {"time", isoTime(e.timestampMs)},
                {"attachments", attachmentsJson(posted.attachments)}},
               "Posted " + shortHex(e.id) +
                   (photos.empty() ? "" : " with " + std::to_string(photos.size()) + " photo(s)") + " to " +
                   (title ? "\"" + terminalSafe(*title, Newlines::ESCAPE) + "\"" : toHex(journal).substr(0, 16)));
}

// The entry `entryArg` names, its journal read, and its body at the version this node reads.
struct Target {
  protocol::Entry entry;
  Reading reading;
  std::optional<Body> body;
};

Target findTarget(Context& ctx, const std::string& entryArg) {
  Target t{findEntry(ctx, entryArg), {}, std::nullopt};
  store::Keyring keyring = ctx.unlock().keyring();
  auto key = ctx.store().epochKey(t.entry.journal, t.entry.epoch, keyring.storageKey);
  try {
    if (key) t.body = protocol::openBody(t.entry, key->view());
  } catch (const protocol::EntryError&) {}
  t.reading = readJournalView(ctx, t.entry.journal);
  return t;
}

bool isDeleted(const Target& t) {
  const auto& v = t.reading.view;
  for (const auto* list : {&v.updates, &v.wishes}) {
    for (const auto& p : *list) {
      if (p.id == t.entry.id) return false;
      for (const auto& c : p.comments) {
        if (c.id == t.entry.id) return false;
      }
    }
  }
  for (const auto& q : v.requests) {
    if (q.id == t.entry.id) return false;
  }
  return true;
}

void react(Context& ctx, const std::string& entryArg, Kind kind, const std::string& text,
           const std::vector<std::string>& photos) {
  std::vector<store::Photo> files = readPhotoFiles(photos);
  protocol::Entry target = findEntry(ctx, entryArg);
  store::Reaction r = store::react(writerOf(ctx), target, kind, text, files, photoProgress(ctx));
  const crypto::PublicKey me = ctx.unlock().identity.publicKey();
  std::string what = kind == Kind::COMMENT ? "Commented on" : r.heartOff ? "Took your heart back from" : "Hearted";
  std::string whose = target.author == me ? std::string("your")
                                          : nameOf(ctx, readJournalView(ctx, target.journal), target.author) + "'s";
  printWritten(ctx,
               {{"id", toHex(r.entry.id)},
                {"journal", toHex(r.entry.journal)},
                {"seq", r.entry.seq},
                {"kind", protocol::kindName(kind)},
                {"heart_off", r.heartOff},
                {"ref", toHex(target.id)}},
               what + " " + whose + " " + kindWord(r.target.kind) + " [" + shortHex(target.id) + "]");
}

void cmdWish(Context& ctx, const std::optional<std::string>& journalArg, const std::string& text) {
  store::requireEntryText(text, "well-wish", false);
  store::JournalId journal = ctx.journal(journalArg);
  protocol::Entry e = store::postWish(writerOf(ctx), journal, text);
  printWritten(ctx, {{"id", toHex(e.id)}, {"journal", toHex(journal)}, {"seq", e.seq}},
               "Left your well-wish [" + shortHex(e.id) + "] in the guestbook");
}

// Edits and deletions touch only the member's own updates, comments, well-wishes and requests.
Target ownTarget(Context& ctx, const std::string& entryArg, const char* verb) {
  Target t = findTarget(ctx, entryArg);
  bool editable = t.body && (t.body->kind == Kind::UPDATE || t.body->kind == Kind::COMMENT ||
                             t.body->kind == Kind::WISH || t.body->kind == Kind::ASK);
  if (!editable || isDeleted(t)) {
    throw Error(ErrorKind::INPUT, "that entry is not an update, comment, well-wish or request you can read",
                "choose an id from 'kith read' or 'kith help'");
  }
  if (t.entry.author != ctx.unlock().identity.publicKey()) {
    throw Error(ErrorKind::AUTH, std::string("you can only ") + verb + " what you wrote yourself",
                "that entry is " + nameOf(ctx, t.reading, t.entry.author) + "'s");
  }
  requireActiveMember(ctx, t.entry.journal);
  return t;
}

void cmdEdit(Context& ctx, const std::string& entryArg, const std::string& textArg,
             const std::vector<std::string>& photos) {
  std::string text = readText(textArg);
  Target t = ownTarget(ctx, entryArg, "edit");
  store::requireEntryText(text, "new text", !photos.empty());
  if (!photos.empty() && t.body->kind != Kind::UPDATE && t.body->kind != Kind::COMMENT) {
    throw Error(ErrorKind::USAGE, "only an update or a comment carries photos", "edit the text alone");
  }
  Body body{Kind::EDIT, text, {t.entry.id}};
  if (!photos.empty()) {
    body.attachments = store::postPhotos(writerOf(ctx), t.entry.journal, readPhotoFiles(photos), photoProgress(ctx));
  } else {
    // The photos stay unless new ones are given.
    for (const auto& p : t.reading.view.updates) {
      if (p.id == t.entry.id) body.attachments = p.attachments;
      for (const auto& c : p.comments) {
        if (c.id == t.entry.id) body.attachments = c.attachments;
      }
    }
  }
  protocol::Entry e = store::post(ctx.store(), ctx.unlock().keyring(), t.entry.journal, body);
  printWritten(ctx, {{"id", toHex(e.id)}, {"journal", toHex(e.journal)}, {"ref", toHex(t.entry.id)}},
               "Edited your " + kindWord(t.body->kind) + " [" + shortHex(t.entry.id) + "]");
}

void cmdDelete(Context& ctx, const std::string& entryArg) {
  Target t = ownTarget(ctx, entryArg, "delete");
  protocol::Entry e =
      store::post(ctx.store(), ctx.unlock().keyring(), t.entry.journal, Body{Kind::DELETE, "", {t.entry.id}});
  printWritten(ctx, {{"id", toHex(e.id)}, {"journal", toHex(e.journal)}, {"ref", toHex(t.entry.id)}},
               "Deleted your " + kindWord(t.body->kind) + " [" + shortHex(t.entry.id) +
                   "]: members' nodes stop showing it as they receive this (the text stays in the signed history "
                   "they already hold)");
}

void cmdName(Context& ctx, const std::optional<std::string>& journalArg, const std::string& name) {
  if (name.empty() || name.size() > protocol::NAME_BYTES_MAX) {
    throw Error(ErrorKind::USAGE, "a name is 1 to " + std::to_string(protocol::NAME_BYTES_MAX) + " bytes",
                "choose a shorter name");
  }
  requireText(name, "name");
  if (name.find('\n') != std::string::npos || name.find('\t') != std::string::npos) {
    throw Error(ErrorKind::USAGE, "a name is one line", "choose a name without line breaks");
  }
  const Unlocked& me = ctx.unlock();
  std::vector<store::JournalId> journals;
  if (journalArg) {
    journals.push_back(ctx.journal(journalArg));
  } else {
    for (const auto& j : ctx.store().journals()) {
      auto m = ctx.store().member(j.id, me.identity.publicKey());
      if (m && m->active && protocol::mayAuthor(m->role)) journals.push_back(j.id);
    }
  }
  if (journals.empty()) {
    throw Error(ErrorKind::NOT_FOUND, "you are not a member of any journal yet",
                "your name is shared when you join one ('kith accept CODE') or create one");
  }
  for (const auto& j : journals) {
    requireActiveMember(ctx, j);
    store::post(ctx.store(), me.keyring(), j, Body{Kind::PROFILE, name, {}});
  }
  printWritten(ctx, {{"name", name}, {"journals", journals.size()}},
               "Your name is now \"" + terminalSafe(name, Newlines::ESCAPE) + "\" in " +
                   std::to_string(journals.size()) + " journal(s)");
}

void cmdPhoto(Context& ctx, const std::string& id, const std::string& out, bool force) {
  if (id.size() < 6 || id.size() > 64 || !tryFromHex(id.substr(0, id.size() & ~size_t{1}))) {
    throw Error(ErrorKind::USAGE, "'" + id + "' is not a photo id",
                "give the id shown after 'photo' by 'kith read' (at least 6 characters)");
  }
  std::string lower = id;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<std::pair<store::JournalId, Attachment>> found;
  for (const auto& j : ctx.store().journals()) {
    Reading r = readJournalView(ctx, j.id);
    auto consider = [&](const std::vector<Attachment>& list) {
      for (const auto& a : list) {
        if (toHex(a.hash).compare(0, lower.size(), lower) == 0) {
          bool dup = false;
          for (const auto& f : found) dup = dup || f.second.hash == a.hash;
          if (!dup) found.emplace_back(j.id, a);
        }
      }
    };
    for (const auto* list : {&r.view.updates, &r.view.wishes}) {
      for (const auto& p : *list) {
        consider(p.attachments);
        for (const auto& c : p.comments) consider(c.attachments);
      }
    }
  }
  if (found.empty()) throw Error(ErrorKind::NOT_FOUND, "there is no photo " + id + " here", "see 'kith read'");
  if (found.size() > 1) throw Error(ErrorKind::USAGE, "'" + id + "' names several photos", "give more characters");
  if (!force && ::access(out.c_str(), F_OK) == 0) {
    throw Error(ErrorKind::CONFLICT, out + " exists already", "choose another name, or add --force to replace it");
  }
  Bytes bytes = store::readAttachment(ctx.store(), ctx.unlock().keyring(), found[0].first, found[0].second);
  writeFileAtomic(out, bytes, 0600);
  ctx.print(
      {{"id", photoId(found[0].second)}, {"name", found[0].second.name}, {"size", bytes.size()}, {"out", out}},
      "Wrote " + terminalSafe(found[0].second.name, Newlines::ESCAPE) + " (" + humanSize(bytes.size()) + ") to " + out);
}

struct PostArgs {
  std::optional<std::string> journal;
  std::string text;
  std::vector<std::string> photos;
};

struct ReadArgs {
  std::optional<std::string> journal;
  bool unread = false;
};

struct CommentArgs {
  std::string entry;
  std::string text;
  std::vector<std::string> photos;
};

struct WishArgs {
  std::optional<std::string> journal;
  std::string text;
};

struct PhotoArgs {
  std::string id;
  std::string out;
  bool force = false;
};

}  // namespace

void addPostReadCommands(Commands& commands) {
  commands.add<PostArgs>(
      "post", "Post an update to a journal (with photos: --photo FILE)",
      [](CLI::App& cmd, PostArgs& a) {
        addJournalOption(cmd, a.journal);
        cmd.add_option("TEXT", a.text, "The update's text, or - to read it from stdin")->required();
        cmd.add_option("--photo", a.photos, "A photo (or any file) to go with it; repeat for more")
            ->check(CLI::ExistingFile);
      },
      [](Context& ctx, const PostArgs& a) { cmdPost(ctx, a.journal, a.text, a.photos); });
  commands.add<ReadArgs>(
      "read", "Read a journal: updates, photos, comments, hearts, help wanted, well-wishes",
      [](CLI::App& cmd, ReadArgs& a) {
        addJournalOption(cmd, a.journal);
        cmd.add_flag("--unread", a.unread, "Only what is new since you last read it");
      },
      [](Context& ctx, const ReadArgs& a) { cmdRead(ctx, a.journal, a.unread); });
  commands.add<CommentArgs>(
      "comment", "Comment on an update",
      [](CLI::App& cmd, CommentArgs& a) {
        cmd.add_option("ENTRY_ID", a.entry, "The update's id (or its first characters) from 'kith read'")->required();
        cmd.add_option("TEXT", a.text, "The comment")->required();
        cmd.add_option("--photo", a.photos, "A photo to go with it; repeat for more")->check(CLI::ExistingFile);
      },
      [](Context& ctx, const CommentArgs& a) { react(ctx, a.entry, Kind::COMMENT, a.text, a.photos); });
  commands.add<std::string>(
      "heart", "Send a heart to an update (again: take it back)",
      [](CLI::App& cmd, std::string& entry) {
        cmd.add_option("ENTRY_ID", entry, "The update's id (or its first characters) from 'kith read'")->required();
      },
      [](Context& ctx, const std::string& entry) { react(ctx, entry, Kind::HEART, "", {}); });
  commands.add<WishArgs>(
      "wish", "Leave a well-wish in the journal's guestbook",
      [](CLI::App& cmd, WishArgs& a) {
        addJournalOption(cmd, a.journal);
        cmd.add_option("TEXT", a.text, "Your well-wish")->required();
      },
      [](Context& ctx, const WishArgs& a) { cmdWish(ctx, a.journal, a.text); });
  commands.add<CommentArgs>(
      "edit", "Change the text of your own update, comment, well-wish or request",
      [](CLI::App& cmd, CommentArgs& a) {
        cmd.add_option("ENTRY_ID", a.entry, "Its id from 'kith read'")->required();
        cmd.add_option("TEXT", a.text, "The new text, or - to read it from stdin")->required();
        cmd.add_option("--photo", a.photos, "New photos instead of the old ones")->check(CLI::ExistingFile);
      },
      [](Context& ctx, const CommentArgs& a) { cmdEdit(ctx, a.entry, a.text, a.photos); });
  commands.add<std::string>(
      "delete", "Delete your own update, comment, well-wish or request",
      [](CLI::App& cmd, std::string& entry) {
        cmd.add_option("ENTRY_ID", entry, "Its id from 'kith read'")->required();
      },
      cmdDelete);
  commands.add<WishArgs>(
      "name", "Set the name the members of your journals see",
      [](CLI::App& cmd, WishArgs& a) {
        addJournalOption(cmd, a.journal, "Only in this journal (default: every journal you are in)");
        cmd.add_option("NAME", a.text, "Your name, as friends know you")->required();
      },
      [](Context& ctx, const WishArgs& a) { cmdName(ctx, a.journal, a.text); });
  commands.add<PhotoArgs>(
      "photo", "Save a photo from a journal to a file",
      [](CLI::App& cmd, PhotoArgs& a) {
        cmd.add_option("PHOTO_ID", a.id, "The id shown after 'photo' by 'kith read'")->required();
        cmd.add_option("--out", a.out, "The file to write")->required();
        cmd.add_flag("--force", a.force, "Replace the file if it exists");
      },
      [](Context& ctx, const PhotoArgs& a) { cmdPhoto(ctx, a.id, a.out, a.force); });
}

}  // namespace kith::cli
