// What a member does to a journal's timeline, with the checks made the same way whichever front
// end asks: the `kith` commands (cli/cmd-post-read.cpp, cli/cmd-help.cpp) and the household's web
// page (web/api.cpp) both call these, and only format what they return.
//
// Threading: the caller's thread; the store's rules (store/store.h) for concurrent writers apply.
// Caveats:
// - Every refusal is an Error whose message says what went wrong in plain words; hints name the
//   `kith` command to use, which the page shows as they are.
// - The photos of an entry are written (as chunk entries) before the entry that names them: a
//   failure between the two leaves pieces nobody shows, never an entry without its photos.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "store/timeline.h"

namespace kith::store {

// Who writes: the store, the member's keys, and the name to publish where it has none yet.
struct Writer {
  Store& store;
  Keyring keyring;
  std::string name;
  PublicKey me() const { return keyring.identity.publicKey(); }
};

// A photo (or any file) to go with an entry, as the person chose it.
struct Photo {
  std::string name;
  Bytes bytes;
};

// Called while a photo's pieces are stored: (photo's name, pieces done, pieces in all).
using PhotoProgress = std::function<void(const std::string&, size_t, size_t)>;

// Throws Error(INPUT) unless `text` is valid UTF-8 without NUL bytes.
void requireText(const std::string& text, const char* what);
// The size, UTF-8 and emptiness checks of an entry's text ("the comment is empty").
void requireEntryText(const std::string& text, const char* what, bool mayBeEmpty);

// The type of a file from its first bytes (no image library: the bytes are stored as they are).
std::string sniffMime(ByteView bytes);

// Throws Error(AUTH) saying what to do when `me` was removed from the journal (or never was a
// member): what it writes there would reach nobody.
void requireActiveMember(const Store& store, const PublicKey& me, const JournalId& journal);

// Posts the writer's name to the journal when it has not published one there yet, so that others
// see who wrote what. Does nothing without a name, or for a member whose role cannot write.
void publishNameIfMissing(const Writer& w, const JournalId& journal);

// Throws Error(USAGE) when more than ATTACHMENTS_MAX photos would go with one entry: checked by the
// front ends before they read (or decode) any photo, and by checkPhotos.
void requirePhotoCount(size_t count);

// Throws Error unless the photos may go with one entry (count, size, emptiness, names): checked
// before anything of the entry is written.
void checkPhotos(const std::vector<Photo>& photos);

// Stores each photo's pieces and returns what the entry that carries them names. Every photo is
// checked (count, size, emptiness) before anything is written.
std::vector<Attachment> postPhotos(const Writer& w, const JournalId& journal, const std::vector<Photo>& photos,
                                   const PhotoProgress& progress = {});

// An update (`kith post`): the member must be active and allowed to post updates.
struct Posted {
  Entry entry;
  std::vector<Attachment> attachments;  // the photos it carries
};
Posted postUpdate(const Writer& w, const JournalId& journal, const std::string& text, const std::vector<Photo>& photos,
                  const PhotoProgress& progress = {});

// A comment or a heart on an update, comment or well-wish (`kith comment`, `kith heart`). A heart
// from a member whose heart is on already takes it back (heartOff).
struct Reaction {
  Entry entry;  // the comment or heart written
  Body target;  // the body of the entry it answers, as this node reads it
  bool heartOff = false;
};
Reaction react(const Writer& w, const Entry& target, Kind kind, const std::string& text,
               const std::vector<Photo>& photos, const PhotoProgress& progress = {});

// A well-wish in the guestbook (`kith wish`).
Entry postWish(const Writer& w, const JournalId& journal, const std::string& text);

// A help request (`kith ask`): only the owner and co-authors ask. `whenMs` 0 is "any time";
// `slots` is how many people are needed (1 to SLOTS_MAX).
Entry askForHelp(const Writer& w, const JournalId& journal, const std::string& text, int64_t whenMs, unsigned slots);

// Closes a help request, DONE or CANCEL (`kith done`, `kith cancel`): only the owner and
// co-authors, and only an open one. Returns the request as it was.
RequestView closeRequest(const Writer& w, const Entry& request, Kind kind);

// Claims a place on a help request or gives it back (`kith claim`, `kith unclaim`); returns the
// request as read after the claim (who holds it now).
RequestView claimRequest(const Writer& w, const Entry& request, Kind kind);

// The request `id` names in its journal as read, or Error(INPUT) when it is not one.
RequestView findRequestView(const Store& store, const Keyring& keyring, const Entry& request);

}  // namespace kith::store
