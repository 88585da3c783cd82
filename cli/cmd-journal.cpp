// The journal commands: `kith journal create` and `kith journal list`.
#include <sstream>

#include "cli/commands.h"

namespace kith::cli {
namespace {

using nlohmann::json;

constexpr size_t TITLE_BYTES_MAX = 200;
// How many digits of a journal's id the hints give: enough to be unique among a home's journals.
constexpr size_t JOURNAL_PREFIX_CHARS = 8;

void cmdJournalCreate(Context& ctx, const std::string& title) {
  requireSize(title, TITLE_BYTES_MAX, "title", "choose a shorter title");
  requireText(title, "title");
  if (title.empty()) throw Error(ErrorKind::USAGE, "the title is empty", "give the journal a title");
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  store::JournalId id = store::createJournal(ctx.store(), keyring, title);
  // With more than one journal, a post must say which: the hint gives a command that works as typed.
  std::string journalOption;
  if (ctx.store().journals().size() > 1) journalOption = " --journal " + toHex(id).substr(0, JOURNAL_PREFIX_CHARS);
  std::ostringstream text;
  text << "Created journal " << toHex(id) << "\n"
       << "  title: " << terminalSafe(title, Newlines::ESCAPE) << "\n"
       << "Next:\n"
       << "  - post your first update: kith post" << journalOption << " \"TEXT\"\n"
       << "  - invite a friend: kith invite" << journalOption << "  (it prints a code to send them)";
  ctx.print({{"id", toHex(id)}, {"title", title}}, text.str());
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
    text << toHex(j.id).substr(0, 16) << "  " << (title ? terminalSafe(*title) : "(title unreadable)") << "\n    "
         << role << ", " << members << (members == 1 ? " member, " : " members, ") << j.entryCount
         << (j.entryCount == 1 ? " entry" : " entries") << ", last update " << localTime(j.lastEntryMs) << "\n";
  }
  if (journals.empty()) {
    text << "No journals yet: join a friend's with 'kith accept CODE' (the invite code they sent you), or create "
            "your own with 'kith journal create \"TITLE\"'.";
  }
  ctx.print(list, text.str());
}

}  // namespace

void addJournalCommands(Commands& commands) {
  Commands journal = commands.group("journal", "Create and list journals");
  journal.add<std::string>(
      "create", "Create a journal that you own",
      [](CLI::App& cmd, std::string& title) {
        cmd.add_option("TITLE", title, "The journal's title (encrypted like everything else)")->required();
      },
      cmdJournalCreate);
  journal.add("list", "List the journals this home holds", cmdJournalList);
}

}  // namespace kith::cli
