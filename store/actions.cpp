#include "store/actions.h"

#include <algorithm>

#include "protocol/roles.h"

namespace kith::store {
namespace {

// The entry's body as this node reads it, or nullopt (no key for its epoch, or a body that does
// not open).
std::optional<Body> bodyOf(const Store& store, const Keyring& keyring, const Entry& entry) {
  auto key = store.epochKey(entry.journal, entry.epoch, keyring.storageKey);
  if (!key) return std::nullopt;
  try {
    return protocol::openBody(entry, key->view());
  } catch (const protocol::EntryError&) { return std::nullopt; }
}

JournalView viewOf(const Store& store, const Keyring& keyring, const JournalId& journal) {
  return foldJournal(readJournal(store, keyring, journal));
}

// The hearts on an update, comment or well-wish as shown; nullptr when the journal as read does
// not show it (deleted, or not one of those).
const std::set<PublicKey>* shownHearts(const JournalView& v, const EntryId& id) {
  for (const auto* list : {&v.updates, &v.wishes}) {
    for (const auto& p : *list) {
      if (p.id == id) return &p.hearts;
      for (const auto& c : p.comments) {
        if (c.id == id) return &c.hearts;
      }
    }
  }
  return nullptr;
}

}  // namespace

void requirePhotoCount(size_t count) {
  if (count > protocol::ATTACHMENTS_MAX) {
    throw Error(ErrorKind::USAGE, "at most " + std::to_string(protocol::ATTACHMENTS_MAX) + " photos go with one entry",
                "post the others in another update");
  }
}

void checkPhotos(const std::vector<Photo>& photos) {
  requirePhotoCount(photos.size());
  size_t pieces = 0;
  for (const auto& p : photos) {
    if (p.bytes.empty()) throw Error(ErrorKind::INPUT, "the photo " + p.name + " is empty", "choose another file");
    if (p.bytes.size() > protocol::ATTACHMENT_BYTES_MAX) {
      throw Error(ErrorKind::INPUT,
                  "the photo " + p.name + " is over the limit of " +
                      std::to_string(protocol::ATTACHMENT_BYTES_MAX / (1024 * 1024)) + " MiB",
                  "make it smaller first");
    }
    if (p.name.empty() || p.name.size() > protocol::ATTACHMENT_NAME_BYTES_MAX) {
      throw Error(ErrorKind::INPUT,
                  "a photo's name is 1 to " + std::to_string(protocol::ATTACHMENT_NAME_BYTES_MAX) + " bytes",
                  "rename the file");
    }
    requireText(p.name, "photo's name");
    pieces += (p.bytes.size() + protocol::CHUNK_BYTES_MAX - 1) / protocol::CHUNK_BYTES_MAX;
  }
  if (pieces > protocol::ATTACHMENT_CHUNKS_MAX) {
    throw Error(ErrorKind::INPUT, "these photos are too large to go with one entry together",
                "post them in several updates");
  }
}

void requireText(const std::string& text, const char* what) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len != 0 && i + len <= n && c != 0;
    for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
    if (ok && len == 2) ok = c >= 0xc2;  // overlong
    if (ok && len == 3) ok = !(c == 0xe0 && p[i + 1] < 0xa0) && !(c == 0xed && p[i + 1] >= 0xa0);
    if (ok && len == 4) ok = !(c == 0xf0 && p[i + 1] < 0x90) && !(c > 0xf4 || (c == 0xf4 && p[i + 1] >= 0x90));
    if (!ok) {
      throw Error(ErrorKind::INPUT, std::string("the ") + what + " is not valid UTF-8 text",
                  "give plain text (no binary data or NUL bytes)");
    }
    i += len;
  }
}

void requireEntryText(const std::string& text, const char* what, bool mayBeEmpty) {
  if (text.size() > protocol::TEXT_BYTES_MAX) {
    throw Error(ErrorKind::INPUT,
                std::string("the ") + what + " is " + std::to_string(text.size()) + " bytes, over the limit of " +
                    std::to_string(protocol::TEXT_BYTES_MAX),
                "shorten it or split it");
  }
  requireText(text, what);
  if (text.empty() && !mayBeEmpty)
    throw Error(ErrorKind::USAGE, std::string("the ") + what + " is empty", "write something");
}

std::string sniffMime(ByteView b) {
  auto starts = [&](std::string_view magic, size_t at = 0) {
    return b.size() >= at + magic.size() &&
           std::equal(magic.begin(), magic.end(), b.begin() + static_cast<std::ptrdiff_t>(at),
                      [](char m, uint8_t x) { return static_cast<uint8_t>(m) == x; });
  };
  if (starts("\xff\xd8\xff")) return "image/jpeg";
  if (starts("\x89PNG\r\n\x1a\n")) return "image/png";
  if (starts("GIF87a") || starts("GIF89a")) return "image/gif";
  if (starts("RIFF") && starts("WEBP", 8)) return "image/webp";
  if (starts("ftypheic", 4) || starts("ftypheix", 4) || starts("ftypmif1", 4)) return "image/heic";
  if (starts("%PDF-")) return "application/pdf";
  return "application/octet-stream";
}

void requireActiveMember(const Store& store, const PublicKey& me, const JournalId& journal) {
  auto member = store.member(journal, me);
  if (!member || !member->active) {
    throw Error(ErrorKind::AUTH, "you are no longer a member of this journal: the owner removed you",
                "nothing you write there would reach anyone; ask the owner to invite you again");
  }
}

void publishNameIfMissing(const Writer& w, const JournalId& journal) {
  if (w.name.empty() || w.name.size() > protocol::NAME_BYTES_MAX) return;
  for (char c : w.name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return;
  }
  auto member = w.store.member(journal, w.me());
  if (!member || !member->active || !protocol::mayAuthor(member->role)) return;
  // Only this member's own chain needs reading: has it ever published a name here?
  if (publishedName(w.store, w.keyring, journal, w.me())) return;
  post(w.store, w.keyring, journal, Body{Kind::PROFILE, w.name, {}});
}

std::vector<Attachment> postPhotos(const Writer& w, const JournalId& journal, const std::vector<Photo>& photos,
                                   const PhotoProgress& progress) {
  checkPhotos(photos);
  std::vector<Attachment> out;
  for (const auto& p : photos) {
    out.push_back(postAttachment(w.store, w.keyring, journal, p.name, sniffMime(p.bytes), p.bytes,
                                 [&](size_t done, size_t total) {
                                   if (progress) progress(p.name, done, total);
                                 }));
  }
  return out;
}

Posted postUpdate(const Writer& w, const JournalId& journal, const std::string& text, const std::vector<Photo>& photos,
                  const PhotoProgress& progress) {
  requireEntryText(text, "text", true);
  if (text.empty() && photos.empty())
    throw Error(ErrorKind::USAGE, "there is nothing to post", "give the text, or - to read it from stdin");
  // The role is checked before any photo is stored: a subscriber's pieces would be refused anyway.
  auto member = w.store.member(journal, w.me());
  if (!member || !member->active || !protocol::mayAuthorKind(member->role, Kind::UPDATE)) {
    throw Error(ErrorKind::AUTH,
                !member || !member->active ? "you are not a member of this journal any more"
                                           : "your role in this journal does not allow you to post updates",
                "comment on an update instead ('kith comment ID TEXT'), or ask the journal's owner");
  }
  checkPhotos(photos);
  publishNameIfMissing(w, journal);
  Body body{Kind::UPDATE, text, {}};
  body.attachments = postPhotos(w, journal, photos, progress);
  Entry e = post(w.store, w.keyring, journal, body);
  return Posted{std::move(e), std::move(body.attachments)};
}

Reaction react(const Writer& w, const Entry& target, Kind kind, const std::string& text,
               const std::vector<Photo>& photos, const PhotoProgress& progress) {
  KITH_ASSERT(kind == Kind::COMMENT || kind == Kind::HEART);
  auto body = bodyOf(w.store, w.keyring, target);
  JournalView view = viewOf(w.store, w.keyring, target.journal);
  const std::set<PublicKey>* hearts = shownHearts(view, target.id);
  if (!body || (body->kind != Kind::UPDATE && body->kind != Kind::COMMENT && body->kind != Kind::WISH) ||
      hearts == nullptr) {
    throw Error(ErrorKind::INPUT, "that entry is not an update, comment or well-wish you can read",
                "choose an id from 'kith read'");
  }
  if (kind == Kind::COMMENT) requireEntryText(text, "comment", !photos.empty());
  requireActiveMember(w.store, w.me(), target.journal);
  checkPhotos(photos);
  publishNameIfMissing(w, target.journal);
  Body reply{kind, text, {target.id}};
  if (kind == Kind::HEART) {
    // One heart per member per entry: a second takes it back.
    reply.heartOff = hearts->count(w.me()) > 0;
  } else {
    reply.attachments = postPhotos(w, target.journal, photos, progress);
  }
  Entry e = post(w.store, w.keyring, target.journal, reply);
  return Reaction{std::move(e), std::move(*body), reply.heartOff};
}

Entry postWish(const Writer& w, const JournalId& journal, const std::string& text) {
  requireEntryText(text, "well-wish", false);
  requireActiveMember(w.store, w.me(), journal);
  publishNameIfMissing(w, journal);
  return post(w.store, w.keyring, journal, Body{Kind::WISH, text, {}});
}

Entry askForHelp(const Writer& w, const JournalId& journal, const std::string& text, int64_t whenMs, unsigned slots) {
  if (text.empty())
    throw Error(ErrorKind::USAGE, "say what help is needed", "for example: kith ask \"Meal for Thursday\"");
  requireEntryText(text, "request", false);
  if (slots == 0 || slots > protocol::SLOTS_MAX) {
    throw Error(ErrorKind::USAGE, "--slots is how many people are needed: 1 to " + std::to_string(protocol::SLOTS_MAX),
                "for example --slots 2");
  }
  if (whenMs < 0) throw Error(ErrorKind::USAGE, "that is not a date and time", "write it as YYYY-MM-DDTHH:MM");
  auto member = w.store.member(journal, w.me());
  if (!member || !member->active || !protocol::mayAuthorKind(member->role, Kind::ASK)) {
    throw Error(ErrorKind::AUTH, "only the journal's owner and co-authors ask for help in it",
                "offer help on a request with 'kith claim ID' (see 'kith help')");
  }
  publishNameIfMissing(w, journal);
  Body body{Kind::ASK, text, {}};
  body.whenMs = whenMs;
  body.slots = static_cast<uint16_t>(slots);
  return post(w.store, w.keyring, journal, body);
}

RequestView closeRequest(const Writer& w, const Entry& request, Kind kind) {
  KITH_ASSERT(kind == Kind::DONE || kind == Kind::CANCEL);
  RequestView q = findRequestView(w.store, w.keyring, request);
  requireActiveMember(w.store, w.me(), request.journal);
  auto member = w.store.member(request.journal, w.me());
  if (!member || !protocol::mayAuthorKind(member->role, kind)) {
    throw Error(ErrorKind::AUTH, "only the journal's owner and co-authors close a request",
                "if you can no longer help, use 'kith unclaim " + toHex(q.id).substr(0, 12) + "'");
  }
  if (q.state != RequestState::OPEN) {
    throw Error(ErrorKind::CONFLICT, std::string("that request is ") + requestStateName(q.state) + " already",
                "see 'kith help --all'");
  }
  post(w.store, w.keyring, request.journal, Body{kind, "", {q.id}});
  return q;
}

RequestView findRequestView(const Store& store, const Keyring& keyring, const Entry& request) {
  JournalView view = viewOf(store, keyring, request.journal);
  for (auto& q : view.requests) {
    if (q.id == request.id) return std::move(q);
  }
  throw Error(ErrorKind::INPUT, "that entry is not a help request you can read", "choose an id from 'kith help'");
}

RequestView claimRequest(const Writer& w, const Entry& request, Kind kind) {
  KITH_ASSERT(kind == Kind::CLAIM || kind == Kind::UNCLAIM);
  RequestView q = findRequestView(w.store, w.keyring, request);
  requireActiveMember(w.store, w.me(), request.journal);
  const PublicKey me = w.me();
  bool holding = std::find(q.holders.begin(), q.holders.end(), me) != q.holders.end();
  bool waiting = std::find(q.waiting.begin(), q.waiting.end(), me) != q.waiting.end();
  if (q.state != RequestState::OPEN && kind == Kind::CLAIM) {
    throw Error(ErrorKind::CONFLICT, std::string("that request is ") + requestStateName(q.state),
                "see the open ones with 'kith help'");
  }
  if (kind == Kind::CLAIM && (holding || waiting)) {
    throw Error(ErrorKind::CONFLICT, holding ? "you have claimed it already" : "you are on its waiting list already",
                "give it back with 'kith unclaim " + toHex(q.id).substr(0, 12) + "'");
  }
  if (kind == Kind::UNCLAIM && !holding && !waiting) {
    throw Error(ErrorKind::CONFLICT, "you have not claimed that request", "see 'kith help'");
  }
  publishNameIfMissing(w, request.journal);
  post(w.store, w.keyring, request.journal, Body{kind, "", {q.id}});
  return findRequestView(w.store, w.keyring, request);
}

}  // namespace kith::store
