#include "store/timeline.h"

#include <algorithm>

#include <sodium.h>

#include "crypto/hash.h"

namespace kith::store {
namespace {

// The latest entry of one author about one target wins: an author's seqs are a total order that
// every replica agrees on, whatever the order entries arrived in.
struct Latest {
  uint64_t seq = 0;
  const ReadEntry* entry = nullptr;
  void offer(const ReadEntry& r) {
    if (entry == nullptr || r.entry.seq > seq) {
      seq = r.entry.seq;
      entry = &r;
    }
  }
};

struct Folding {
  std::map<EntryId, const ReadEntry*> byId;
  std::map<PublicKey, Latest> profiles;
  // target -> author -> latest edit, heart, claim or unclaim by that author
  std::map<EntryId, std::map<PublicKey, Latest>> edits, hearts, claims;
  std::map<EntryId, std::set<PublicKey>> deletions, dones, cancels;

  const Body* latestBody(const ReadEntry& target, bool* edited, int64_t* editedMs) const {
    const Body* body = &*target.body;
    auto e = edits.find(target.entry.id);
    if (e == edits.end()) return body;
    // Only the author's own edits count.
    auto mine = e->second.find(target.entry.author);
    if (mine == e->second.end()) return body;
    *edited = true;
    if (editedMs != nullptr) *editedMs = mine->second.entry->entry.timestampMs;
    return &*mine->second.entry->body;
  }
  bool deleted(const ReadEntry& target) const {
    auto d = deletions.find(target.entry.id);
    return d != deletions.end() && d->second.count(target.entry.author) > 0;
  }
  std::set<PublicKey> heartsOn(const EntryId& target) const {
    std::set<PublicKey> out;
    auto h = hearts.find(target);
    if (h == hearts.end()) return out;
    for (const auto& [author, latest] : h->second) {
      if (!latest.entry->body->heartOff) out.insert(author);
    }
    return out;
  }
};

}  // namespace

const char* requestStateName(RequestState state) {
  switch (state) {
    case RequestState::OPEN:
      return "open";
    case RequestState::DONE:
      return "done";
    case RequestState::CANCELLED:
      return "cancelled";
  }
  return "unknown";
}

JournalView foldJournal(const std::vector<ReadEntry>& entries) {
  JournalView view;
  Folding f;
  for (const ReadEntry& r : entries) {
    if (!r.body) {
      if (!r.entry.body.empty()) ++view.unreadable;
      continue;
    }
    f.byId.emplace(r.entry.id, &r);
    const Body& b = *r.body;
    const PublicKey& author = r.entry.author;
    switch (b.kind) {
      case Kind::PROFILE:
        f.profiles[author].offer(r);
        break;
      case Kind::EDIT:
        f.edits[b.refs[0]][author].offer(r);
        break;
      case Kind::HEART:
        f.hearts[b.refs[0]][author].offer(r);
        break;
      case Kind::CLAIM:
      case Kind::UNCLAIM:
        f.claims[b.refs[0]][author].offer(r);
        break;
      case Kind::DELETE:
        f.deletions[b.refs[0]].insert(author);
        break;
      case Kind::DONE:
        f.dones[b.refs[0]].insert(author);
        break;
      case Kind::CANCEL:
        f.cancels[b.refs[0]].insert(author);
        break;
      default:
        break;
    }
  }
  for (const auto& [author, latest] : f.profiles) view.names[author] = latest.entry->body->text;

  // Comments under the entry they answer, in timeline order.
  std::map<EntryId, std::vector<CommentView>> comments;
  for (const ReadEntry& r : entries) {
    if (!r.body || r.body->kind != Kind::COMMENT || f.deleted(r)) continue;
    CommentView c;
    c.id = r.entry.id;
    c.author = r.entry.author;
    c.timeMs = r.entry.timestampMs;
    const Body* body = f.latestBody(r, &c.edited, nullptr);
    c.text = body->text;
    c.attachments = body->attachments;
    c.hearts = f.heartsOn(r.entry.id);
    comments[r.body->refs[0]].push_back(std::move(c));
  }

  for (const ReadEntry& r : entries) {
    if (!r.body || f.deleted(r)) continue;
    Kind kind = r.body->kind;
    if (kind == Kind::UPDATE || kind == Kind::WISH) {
      PostView p;
      p.id = r.entry.id;
      p.author = r.entry.author;
      p.kind = kind;
      p.timeMs = r.entry.timestampMs;
      const Body* body = f.latestBody(r, &p.edited, &p.editedMs);
      p.text = body->text;
      p.attachments = body->attachments;
      p.hearts = f.heartsOn(r.entry.id);
      auto c = comments.find(r.entry.id);
      if (c != comments.end()) p.comments = std::move(c->second);
      (kind == Kind::UPDATE ? view.updates : view.wishes).push_back(std::move(p));
    } else if (kind == Kind::ASK) {
      RequestView q;
      q.id = r.entry.id;
      q.author = r.entry.author;
      q.timeMs = r.entry.timestampMs;
      q.whenMs = r.body->whenMs;
      q.slots = r.body->slots;
      q.text = f.latestBody(r, &q.edited, nullptr)->text;
      if (f.cancels.count(q.id) > 0) {
        q.state = RequestState::CANCELLED;
      } else if (f.dones.count(q.id) > 0) {
        q.state = RequestState::DONE;
      }
      // Each member's latest claim or unclaim decides whether it claims; standing claims are
      // ordered by their time, then their id, and the first `slots` hold the slots.
      struct Standing {
        int64_t timeMs;
        EntryId id;
        PublicKey who;
      };
      std::vector<Standing> standing;
      auto c = f.claims.find(q.id);
      if (c != f.claims.end()) {
        for (const auto& [who, latest] : c->second) {
          if (latest.entry->body->kind == Kind::CLAIM) {
            standing.push_back({latest.entry->entry.timestampMs, latest.entry->entry.id, who});
          }
        }
      }
      std::sort(standing.begin(), standing.end(), [](const Standing& a, const Standing& b) {
        return std::tie(a.timeMs, a.id) < std::tie(b.timeMs, b.id);
      });
      for (const Standing& s : standing) (q.holders.size() < q.slots ? q.holders : q.waiting).push_back(s.who);
      view.requests.push_back(std::move(q));
    }
  }
  return view;
}

std::string displayName(const JournalView& view, const PublicKey& who, const std::optional<PublicKey>& me) {
  if (me && who == *me) return "you";
  auto it = view.names.find(who);
  if (it == view.names.end()) return toHex(who).substr(0, 8);
  for (const auto& [other, name] : view.names) {
    if (other != who && name == it->second) return it->second + " (" + toHex(who).substr(0, 6) + ")";
  }
  return it->second;
}

std::optional<std::string> publishedName(const Store& store, const Keyring& keyring, const JournalId& journal,
                                         const PublicKey& author) {
  std::optional<std::string> name;
  std::map<uint32_t, std::optional<crypto::SecretBuffer>> keys;
  for (uint64_t from = 1;;) {
    auto batch = store.range(journal, author, from, 256);
    if (batch.empty()) break;
    for (const auto& e : batch) {
      from = e.seq + 1;
      auto key = keys.find(e.epoch);
      if (key == keys.end()) key = keys.emplace(e.epoch, store.epochKey(journal, e.epoch, keyring.storageKey)).first;
      if (!key->second) continue;
      try {
        auto body = protocol::openBody(e, key->second->view());
        if (body && body->kind == Kind::PROFILE) name = body->text;
      } catch (const protocol::EntryError&) {}
    }
  }
  return name;
}

Bytes readAttachment(const Store& store, const Keyring& keyring, const JournalId& journal,
                     const Attachment& attachment) {
  Bytes out;
  out.reserve(attachment.size);
  size_t missing = 0;
  std::map<uint32_t, std::optional<crypto::SecretBuffer>> keys;
  for (const EntryId& id : attachment.chunks) {
    auto chunk = store.entryById(id);
    if (!chunk || chunk->journal != journal) {
      ++missing;
      continue;
    }
    auto key = keys.find(chunk->epoch);
    if (key == keys.end())
      key = keys.emplace(chunk->epoch, store.epochKey(journal, chunk->epoch, keyring.storageKey)).first;
    std::optional<Body> body;
    if (key->second) {
      try {
        body = protocol::openBody(*chunk, key->second->view());
      } catch (const protocol::EntryError&) {}
    }
    if (!body || body->kind != Kind::CHUNK) {
      throw Error(ErrorKind::CORRUPT, "a piece of " + attachment.name + " cannot be read here",
                  "the file cannot be shown; ask its author to post it again");
    }
    if (missing == 0) out.insert(out.end(), body->data.begin(), body->data.end());
    if (!body->data.empty()) sodium_memzero(body->data.data(), body->data.size());
  }
  if (missing > 0) {
    throw Error(ErrorKind::NOT_FOUND,
                std::to_string(missing) + " of the " + std::to_string(attachment.chunks.size()) + " pieces of " +
                    attachment.name + " have not arrived here yet",
                "run 'kith sync', or wait for 'kith serve' to receive them");
  }
  if (out.size() != attachment.size || protocol::attachmentHash(out) != attachment.hash) {
    throw Error(ErrorKind::CORRUPT, "the pieces of " + attachment.name + " do not add up to the file its author posted",
                "the file cannot be shown; ask its author to post it again");
  }
  return out;
}

Attachment postAttachment(Store& store, const Keyring& keyring, const JournalId& journal, const std::string& name,
                          const std::string& mime, ByteView bytes,
                          const std::function<void(size_t, size_t)>& progress) {
  if (bytes.empty() || bytes.size() > protocol::ATTACHMENT_BYTES_MAX) {
    throw Error(ErrorKind::INPUT,
                name + " is " +
                    (bytes.empty() ? std::string("empty")
                                   : "over the limit of " +
                                         std::to_string(protocol::ATTACHMENT_BYTES_MAX / (1024 * 1024)) + " MiB"),
                "choose a smaller photo, or make it smaller first");
  }
  Attachment a;
  a.name = name;
  a.mime = mime;
  a.size = bytes.size();
  a.hash = protocol::attachmentHash(bytes);
  size_t total = (bytes.size() + protocol::CHUNK_BYTES_MAX - 1) / protocol::CHUNK_BYTES_MAX;
  for (size_t i = 0; i < total; ++i) {
    Body chunk{Kind::CHUNK, "", {}};
    ByteView piece = bytes.subspan(i * protocol::CHUNK_BYTES_MAX,
                                   std::min(protocol::CHUNK_BYTES_MAX, bytes.size() - i * protocol::CHUNK_BYTES_MAX));
    chunk.data.assign(piece.begin(), piece.end());
    a.chunks.push_back(post(store, keyring, journal, chunk).id);
    sodium_memzero(chunk.data.data(), chunk.data.size());
    if (progress) progress(i + 1, total);
  }
  return a;
}

}  // namespace kith::store
