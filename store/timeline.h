// The journal as its people read it: readJournal's entries folded into updates with their comments
// and hearts, the guestbook of well-wishes, the help requests with who holds their slots, and each
// member's display name. Edits, deletions, hearts taken back and claims given back are applied
// here, by rules that depend only on the set of entries held (not the order they arrived in), so
// that every replica holding the same entries shows the same journal. specs/entry.md, "Reading a
// journal", states the rules.
//
// Threading: pure functions over values; safe from any thread.
// Caveats:
// - Only entries whose author may write their kind reach here (readJournal drops the others); the
//   rules of this file add who may touch whose entry (an edit or a deletion of someone else's entry
//   is ignored).
// - An attachment lists chunk entries by id; whether they are held yet is readAttachment's concern.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/journal.h"

namespace kith::store {

using protocol::Attachment;

// A comment, shown under the entry it answers, at its latest version.
struct CommentView {
  EntryId id{};
  PublicKey author{};
  int64_t timeMs = 0;
  std::string text;
  std::vector<Attachment> attachments;
  bool edited = false;
  std::set<PublicKey> hearts;
};

// An update or a well-wish, at its latest version, with the comments and hearts it received.
struct PostView {
  EntryId id{};
  PublicKey author{};
  Kind kind = Kind::UPDATE;  // UPDATE or WISH
  int64_t timeMs = 0;
  std::string text;
  std::vector<Attachment> attachments;
  bool edited = false;
  int64_t editedMs = 0;
  std::vector<CommentView> comments;  // in timeline order, deleted ones left out
  std::set<PublicKey> hearts;         // the members whose heart is on (one each)
};

enum class RequestState { OPEN, DONE, CANCELLED };
const char* requestStateName(RequestState state);

// A help request and who holds its slots. `holders` are the first `slots` members whose claim
// stands, by the time of their claim (then by the claim's id); the rest wait in that order.
struct RequestView {
  EntryId id{};
  PublicKey author{};
  int64_t timeMs = 0;
  std::string text;
  bool edited = false;
  int64_t whenMs = 0;
  uint16_t slots = 1;
  RequestState state = RequestState::OPEN;
  std::vector<PublicKey> holders;
  std::vector<PublicKey> waiting;
};

struct JournalView {
  std::map<PublicKey, std::string> names;  // each author's latest PROFILE
  std::vector<PostView> updates;           // timeline order, deleted ones left out
  std::vector<PostView> wishes;
  std::vector<RequestView> requests;
  size_t unreadable = 0;  // content entries this node holds no key for
};

// Folds readJournal's entries (in its timeline order) into the journal as read.
JournalView foldJournal(const std::vector<ReadEntry>& entries);

// How `kith` names a member: "you" for `me`; otherwise the member's name, with the first characters
// of its key in brackets when another member of the journal has the same name; the first 8 hex
// characters of its key when it has published no name.
std::string displayName(const JournalView& view, const PublicKey& who, const std::optional<PublicKey>& me);

// The author's latest published name in the journal (its latest PROFILE), read from its own chain
// only (not the whole journal); nullopt when it has published none this node can read.
std::optional<std::string> publishedName(const Store& store, const Keyring& keyring, const JournalId& journal,
                                         const PublicKey& author);

// An attachment's bytes, put together from its chunk entries held in this store and checked
// against its size and hash. Throws Error(NOT_FOUND) naming how many pieces are still missing when
// some have not arrived yet, and Error(CORRUPT) when the pieces do not add up to the file.
Bytes readAttachment(const Store& store, const Keyring& keyring, const JournalId& journal,
                     const Attachment& attachment);

// Writes the chunk entries of a file and returns the Attachment that names them, for an update,
// comment or edit to carry. `progress(done, total)` is called after each piece.
Attachment postAttachment(Store& store, const Keyring& keyring, const JournalId& journal, const std::string& name,
                          const std::string& mime, ByteView bytes,
                          const std::function<void(size_t, size_t)>& progress = {});

}  // namespace kith::store
