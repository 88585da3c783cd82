// The commands about who is in a journal: members, grant, revoke.
#include <sstream>

#include "cli/commands.h"
#include "cli/config.h"
#include "cli/reading.h"
#include "crypto/fingerprint.h"
#include "protocol/roles.h"

namespace kith::cli {
namespace {

using nlohmann::json;

void cmdGrant(Context& ctx, const std::string& keyArg, const std::optional<std::string>& journalArg,
              const std::string& roleArg) {
  crypto::PublicKey member = parseKey(keyArg, "public key");
  auto role = protocol::tryParseRole(roleArg);
  if (!role || !protocol::isGrantable(*role)) {
    throw Error(ErrorKind::USAGE, "'" + roleArg + "' is not a role you can grant", "use subscriber, coauthor or relay");
  }
  store::JournalId journal = ctx.journal(journalArg);
  const Unlocked& me = ctx.unlock();
  if (member == me.identity.publicKey())
    throw Error(ErrorKind::USAGE, "that is your own key", "give your friend's key");
  store::Keyring keyring = me.keyring();
  store::addMember(ctx.store(), keyring, journal, member, *role);
  Config config = Config::load(ctx.home());
  std::optional<std::string> serving = servingAddress(ctx.home());
  std::string fp = crypto::fingerprint(member);
  std::ostringstream text;
  text << "Granted " << toHex(member).substr(0, 16) << " (fingerprint " << fp << ") the role " << roleArg
       << " in journal " << toHex(journal).substr(0, 16) << ".\n"
       << "Compare the fingerprint with your friend, then give them this command (with the address at which\n"
       << "their computer reaches yours" << (serving ? "" : ", once 'kith serve' runs") << "):\n"
       << "  kith follow " << toHex(journal) << " --peer " << (serving ? *serving : config.listen) << " --key "
       << toHex(me.identity.publicKey()) << "\n"
       << "(An invite code is simpler for most friends: 'kith invite'.)";
  ctx.print({{"journal", toHex(journal)}, {"member", toHex(member)}, {"fingerprint", fp}, {"role", roleArg}},
            text.str());
}

// The journal's names, when the identity opens without asking (names are encrypted in the journal).
std::optional<Reading> namesIfOpen(Context& ctx, const store::JournalId& journal) {
  if (ctx.keyInfo().sealed && std::getenv("KITH_PASSPHRASE") == nullptr) return std::nullopt;
  return readJournalView(ctx, journal);
}

void cmdMembers(Context& ctx, const std::optional<std::string>& journalArg) {
  store::JournalId journal = ctx.journal(journalArg);
  crypto::KeyFileInfo me = ctx.keyInfo();
  std::optional<Reading> r = namesIfOpen(ctx, journal);
  json list = json::array();
  std::ostringstream text;
  for (const auto& m : ctx.store().members(journal)) {
    std::string fp = crypto::fingerprint(m.key);
    std::string name;
    if (r) {
      auto it = r->view.names.find(m.key);
      if (it != r->view.names.end()) name = it->second;
    }
    list.push_back({{"key", toHex(m.key)},
                    {"name", name.empty() ? json(nullptr) : json(name)},
                    {"fingerprint", fp},
                    {"role", protocol::roleName(m.role)},
                    {"active", m.active},
                    {"you", m.key == me.publicKey}});
    std::string shown = r ? store::displayName(r->view, m.key, std::nullopt) : std::string();
    if (!shown.empty() && shown != toHex(m.key).substr(0, 8)) {
      shown = terminalSafe(shown, Newlines::ESCAPE);
    } else {
      shown = "(no name)";
    }
    text << shown << "  " << toHex(m.key).substr(0, 16) << "  " << fp << "  " << protocol::roleName(m.role)
         << (m.active ? "" : " (removed)") << (m.key == me.publicKey ? "  (you)" : "") << "\n";
    if (m.key == me.publicKey && !m.active) {
      text << "  You were removed from this journal by its owner: what you write there reaches nobody.\n";
    }
  }
  ctx.print(list, text.str());
}

void cmdRevoke(Context& ctx, const std::string& memberArg, const std::optional<std::string>& journalArg) {
  store::JournalId journal = ctx.journal(journalArg);
  bool isKey = memberArg.size() >= 6 && memberArg.size() <= 64 &&
               tryFromHex(memberArg.substr(0, memberArg.size() & ~size_t{1})).has_value();
  std::vector<store::Member> matches;
  std::optional<Reading> r = namesIfOpen(ctx, journal);
  for (const auto& m : ctx.store().members(journal)) {
    if (!m.active) continue;
    bool byKey = isKey && toHex(m.key).rfind(memberArg, 0) == 0;
    bool byName = false;
    if (r) {
      auto it = r->view.names.find(m.key);
      byName = it != r->view.names.end() && it->second == memberArg;
    }
    if (byKey || byName) matches.push_back(m);
  }
  if (matches.empty()) {
    throw Error(ErrorKind::NOT_FOUND, "no current member is named " + memberArg + " or has a key starting with it",
                "see 'kith members'");
  }
  if (matches.size() > 1) {
    throw Error(ErrorKind::USAGE, "'" + memberArg + "' matches several members",
                "give more characters of the key shown by 'kith members'");
  }
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  protocol::Entry e = store::removeMember(ctx.store(), keyring, journal, matches[0].key);
  ctx.print({{"journal", toHex(journal)}, {"member", toHex(matches[0].key)}, {"epoch", e.control.newEpoch}},
            "Removed " + toHex(matches[0].key).substr(0, 16) + " from journal " + toHex(journal).substr(0, 16) +
                ". New posts use a new key (epoch " + std::to_string(e.control.newEpoch) +
                ") that they do not have; what they already received stays readable to them.");
}

struct GrantArgs {
  std::string key;
  std::optional<std::string> journal;
  std::string role = "subscriber";
};

struct RevokeArgs {
  std::string member;
  std::optional<std::string> journal;
};

}  // namespace

void addMemberCommands(Commands& commands) {
  commands.add<GrantArgs>(
      "grant", "Add a friend's key to a journal (owner only)",
      [](CLI::App& cmd, GrantArgs& a) {
        cmd.add_option("PUBKEY", a.key, "The friend's public key (from their 'kith id')")->required();
        addJournalOption(cmd, a.journal);
        cmd.add_option("--role", a.role, "subscriber (reads, comments) or coauthor (also posts)");
      },
      [](Context& ctx, const GrantArgs& a) { cmdGrant(ctx, a.key, a.journal, a.role); });
  commands.add<std::optional<std::string>>(
      "members", "List a journal's members and their fingerprints",
      [](CLI::App& cmd, std::optional<std::string>& journal) { addJournalOption(cmd, journal); }, cmdMembers);
  commands.add<RevokeArgs>(
      "revoke", "Remove a member from a journal (owner only); they get nothing new",
      [](CLI::App& cmd, RevokeArgs& a) {
        cmd.add_option("MEMBER", a.member, "The member's name, or key (or its first characters), from 'kith members'")
            ->required();
        addJournalOption(cmd, a.journal);
      },
      [](Context& ctx, const RevokeArgs& a) { cmdRevoke(ctx, a.member, a.journal); });
}

}  // namespace kith::cli
