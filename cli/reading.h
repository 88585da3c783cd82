// What the commands about a journal's content share: the journal as read (store/timeline.h) with
// this member's marks of what it has read, finding an entry, a request or a photo by the id `kith
// read` shows, publishing this member's name where it has not yet, and the note that says whether
// a running node will send what was just written.
//
// Threading: the command's thread.
// Caveats: read marks live in HOME/read-marks, sealed under the home's storage key; a damaged or
// unreadable file counts everything as unread rather than stopping a command.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "cli/context.h"
#include "store/actions.h"
#include "store/timeline.h"

namespace kith::cli {

struct Reading {
  store::JournalId journal{};
  std::vector<store::ReadEntry> entries;
  store::JournalView view;
  std::optional<std::string> title;
};

// Reads and folds the journal, warning on stderr about damaged entries it skipped.
Reading readJournalView(Context& ctx, const store::JournalId& journal);

// A member's name as `kith` prints it, made safe for the terminal.
std::string nameOf(Context& ctx, const Reading& r, const crypto::PublicKey& who);

// The entry named by a hex id or a unique prefix of one (at least 6 characters), of any journal of
// this home. Throws Error with what to do otherwise.
protocol::Entry findEntry(Context& ctx, const std::string& id);

// This member as the writer of store/actions.h: the home's store, its keys and its name.
store::Writer writerOf(Context& ctx);

// Posts this member's name (from `kith init --name` or `kith name`) to the journal when it has not
// published one there yet, so that others see who wrote what. Does nothing without a name, or for
// a member whose role cannot write.
void publishNameIfMissing(Context& ctx, const store::JournalId& journal);

// Read marks: for each journal, the last seq of each author this member has seen in `kith read`.
using ReadMarks = std::map<crypto::PublicKey, uint64_t>;
ReadMarks loadReadMarks(Context& ctx, const store::JournalId& journal);
void saveReadMarks(Context& ctx, const store::JournalId& journal, const ReadMarks& marks);
// Whether an entry is news for this member: an update, comment, well-wish or request by someone
// else, past the read mark of its author.
bool isUnread(const ReadMarks& marks, const protocol::Entry& e, const protocol::Body& body,
              const crypto::PublicKey& me);

// Throws Error(AUTH) saying what to do when this member was removed from the journal (or never
// was one): what it writes there would reach nobody.
void requireActiveMember(Context& ctx, const store::JournalId& journal);

// A help request's time for people: the local time, or "any time" for none (0).
std::string whenText(int64_t ms);

// A size for people: "812 bytes", "1.4 MB".
std::string humanSize(uint64_t bytes);

}  // namespace kith::cli
