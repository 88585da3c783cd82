// The journal commands: `kith journal create` and `kith journal list`.
#include <sstream>

#include "cli/commands.h"

namespace kith::cli {
namespace {

using nlohmann::json;

constexpr size_t TITLE_BYTES_MAX = 200;

void cmdJournalCreate(Context& ctx, const std::string& title) {
  requireSize(title, TITLE_BYTES_MAX, "title", "choose a shorter title");
  requireText(title, "title");
  if (title.empty()) throw Error(ErrorKind::USAGE, "the title is empty", "give the journal a title");
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  store::JournalId id = store::createJournal(ctx.store(), keyring, title);
  ctx.print({{"id", toHex(id)}, {"title", title}}, "Created journal " + toHex(id) + "\n  title: " + title +
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
    text << toHex(j.id).substr(0, 16) << "  " << (title ? terminalSafe(*title) : "(title unreadable)") << "\n    "
         << role << ", " << members << (members == 1 ? " member, " : " members, ") << j.entryCount
         << (j.entryCount == 1 ? " entry" : " entries") << ", last update " << localTime(j.lastEntryMs) << "\n";
  }
  if (journals.empty()) text << "No journals yet: create one with 'kith journal create \"TITLE\"'.";
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
