// The commands of a journal's circle: comment, heart, revoke.
#include <sstream>

#include "cli/commands.h"
#include "crypto/fingerprint.h"

namespace kith::cli {
namespace {

using nlohmann::json;
using protocol::Body;
using protocol::Kind;

constexpr size_t ENTRY_MATCHES_MAX = 8;

// The entry named by a hex id or a unique prefix of one (at least 6 characters).
protocol::Entry findEntry(Context& ctx, const std::string& id) {
  if (id.size() < 6 || id.size() > 64 || !tryFromHex(id.substr(0, id.size() & ~size_t{1}))) {
    throw Error(ErrorKind::USAGE, "'" + id + "' is not an entry id",
                "give the id shown in brackets by 'kith read' (at least 6 characters)");
  }
  auto found = ctx.store().findEntries(id, ENTRY_MATCHES_MAX);
  if (found.empty()) throw Error(ErrorKind::NOT_FOUND, "there is no entry " + id + " in this home", "see 'kith read'");
  if (found.size() > 1) {
    throw Error(ErrorKind::USAGE, "'" + id + "' matches " + std::to_string(found.size()) + " entries",
                "give more characters of the id");
  }
  auto entry = ctx.store().entryById(found[0]);
  KITH_ASSERT(entry.has_value());
  return std::move(*entry);
}

void react(Context& ctx, const std::string& entryArg, Kind kind, const std::string& text) {
  protocol::Entry target = findEntry(ctx, entryArg);
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  auto key = ctx.store().epochKey(target.journal, target.epoch, keyring.storageKey);
  std::optional<Body> body = key ? protocol::openBody(target, key->view()) : std::nullopt;
  if (!body || (body->kind != Kind::UPDATE && body->kind != Kind::COMMENT)) {
    throw Error(ErrorKind::INPUT, "that entry is not an update or a comment you can read",
                "choose an update's id from 'kith read'");
  }
  protocol::Entry e = store::post(ctx.store(), keyring, target.journal, Body{kind, text, {target.id}});
  const char* what = kind == Kind::HEART ? "Hearted" : "Commented on";
  ctx.print({{"id", toHex(e.id)}, {"journal", toHex(e.journal)}, {"seq", e.seq}, {"kind", protocol::kindName(kind)},
             {"ref", toHex(target.id)}},
            std::string(what) + " " + toHex(target.id).substr(0, 12) + " (" + toHex(e.id).substr(0, 12) + ")");
}

void cmdComment(Context& ctx, const std::string& entryArg, const std::string& text) {
  if (text.empty()) throw Error(ErrorKind::USAGE, "the comment is empty", "write something");
  if (text.size() > protocol::TEXT_BYTES_MAX) {
    throw Error(ErrorKind::INPUT,
                "the comment is " + std::to_string(text.size()) + " bytes, over the limit of " +
                    std::to_string(protocol::TEXT_BYTES_MAX),
                "shorten it");
  }
  requireText(text, "comment");
  react(ctx, entryArg, Kind::COMMENT, text);
}

void cmdRevoke(Context& ctx, const std::string& memberArg, const std::optional<std::string>& journalArg) {
  store::JournalId journal = ctx.journal(journalArg);
  if (memberArg.size() < 6 || memberArg.size() > 64 || !tryFromHex(memberArg.substr(0, memberArg.size() & ~size_t{1}))) {
    throw Error(ErrorKind::USAGE, "'" + memberArg + "' is not a member's key",
                "give the key (or its first characters) shown by 'kith members'");
  }
  std::vector<store::Member> matches;
  for (const auto& m : ctx.store().members(journal)) {
    if (m.active && toHex(m.key).rfind(memberArg, 0) == 0) matches.push_back(m);
  }
  if (matches.empty()) {
    throw Error(ErrorKind::NOT_FOUND, "no current member's key starts with " + memberArg, "see 'kith members'");
  }
  if (matches.size() > 1) throw Error(ErrorKind::USAGE, "'" + memberArg + "' matches several members", "give more characters");
  const Unlocked& me = ctx.unlock();
  store::Keyring keyring = me.keyring();
  protocol::Entry e = store::removeMember(ctx.store(), keyring, journal, matches[0].key);
  ctx.print({{"journal", toHex(journal)}, {"member", toHex(matches[0].key)}, {"epoch", e.control.newEpoch}},
            "Removed " + toHex(matches[0].key).substr(0, 16) + " from journal " + toHex(journal).substr(0, 16) +
                ". New posts use a new key (epoch " + std::to_string(e.control.newEpoch) +
                ") that they do not have; what they already received stays readable to them.");
}

}  // namespace

void addCircleCommands(CLI::App& app, Action& action) {
  {
    auto* cmd = app.add_subcommand("comment", "Comment on an update");
    auto entry = std::make_shared<std::string>();
    auto text = std::make_shared<std::string>();
    cmd->add_option("ENTRY_ID", *entry, "The update's id (or its first characters) from 'kith read'")->required();
    cmd->add_option("TEXT", *text, "The comment")->required();
    cmd->callback([&action, entry, text] {
      action = [entry, text](Context& ctx) { cmdComment(ctx, *entry, *text); };
    });
  }
  {
    auto* cmd = app.add_subcommand("heart", "Send a heart to an update");
    auto entry = std::make_shared<std::string>();
    cmd->add_option("ENTRY_ID", *entry, "The update's id (or its first characters) from 'kith read'")->required();
    cmd->callback([&action, entry] { action = [entry](Context& ctx) { react(ctx, *entry, Kind::HEART, ""); }; });
  }
  {
    auto* cmd = app.add_subcommand("revoke", "Remove a member from a journal (owner only); they get nothing new");
    auto member = std::make_shared<std::string>();
    auto journal = std::make_shared<std::optional<std::string>>();
    cmd->add_option("MEMBER", *member, "The member's key (or its first characters) from 'kith members'")->required();
    cmd->add_option("--journal", *journal, "Journal id (or a unique prefix); optional with one journal");
    cmd->callback([&action, member, journal] {
      action = [member, journal](Context& ctx) { cmdRevoke(ctx, *member, *journal); };
    });
  }
}

}  // namespace kith::cli
