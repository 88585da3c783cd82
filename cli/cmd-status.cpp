// `kith status`: this node's identity, journals, peers and whether it serves.
#include <sstream>

#include "cli/commands.h"
#include "cli/config.h"
#include "cli/reading.h"
#include "crypto/fingerprint.h"

namespace kith::cli {
namespace {

using nlohmann::json;

void cmdStatus(Context& ctx) {
  const Home& home = ctx.home();
  crypto::KeyFileInfo info = ctx.keyInfo();
  store::Store& s = ctx.store();
  auto journals = s.journals();
  uint64_t entries = 0;
  for (const auto& j : journals) entries += j.entryCount;
  std::string fp = crypto::fingerprint(info.publicKey);
  json j = {{"home", home.path()},
            {"id", toHex(info.publicKey)},
            {"fingerprint", fp},
            {"sealed", info.sealed},
            {"journals", journals.size()},
            {"entries", entries},
            {"store_map_bytes", s.mapBytes()}};
  Config config = Config::load(home);
  std::optional<std::string> serving = servingAddress(home);
  j["node"] = serving ? "serving" : "stopped";
  j["listen"] = serving ? json(*serving) : json(nullptr);
  j["peers"] = config.peers.size();
  j["follows"] = config.follows.size();
  // What the running node reaches (HOME/serve-status.json, kept by `kith serve`).
  json reach = nullptr;
  if (serving) {
    try {
      auto bytes = readSmallFile("the serve status", serveStatusPath(home), 4 << 20, "it is rewritten by 'kith serve'");
      if (bytes) reach = json::parse(asChars(*bytes));
    } catch (const std::exception&) {
      reach = nullptr;  // being rewritten, or damaged: status says nothing of peers then
    }
  }
  j["reach"] = reach;
  auto page = serving ? webAddress(home) : std::nullopt;
  j["page"] = page ? json("http://" + *page + "/") : json(nullptr);
  // Per journal: this member's role and what is unread. The kinds are encrypted, so this needs the
  // identity unlocked: shown when that asks no passphrase (as 'kith id' does with the name).
  json perJournal = json::array();
  std::ostringstream journalLines;
  if (!info.sealed || std::getenv("KITH_PASSPHRASE") != nullptr) {
    const crypto::PublicKey me = ctx.unlock().identity.publicKey();
    for (const auto& ji : journals) {
      Reading r = readJournalView(ctx, ji.id);
      ReadMarks marks = loadReadMarks(ctx, ji.id);
      size_t unread = 0;
      for (const auto& e : r.entries) unread += e.body && isUnread(marks, e.entry, *e.body, me) ? 1 : 0;
      auto member = s.member(ji.id, me);
      std::string role = !member ? "following" : !member->active ? "removed" : protocol::roleName(member->role);
      perJournal.push_back({{"id", toHex(ji.id)},
                            {"title", r.title ? json(*r.title) : json(nullptr)},
                            {"role", role},
                            {"unread", unread}});
      journalLines << "\n  " << (r.title ? terminalSafe(*r.title, Newlines::ESCAPE) : std::string("(title unreadable)"))
                   << "  [" << toHex(ji.id).substr(0, 16) << "]  ";
      if (member && !member->active) {
        journalLines << "you were removed from this journal by its owner";
      } else {
        journalLines << "you: " << role << ", "
                     << (unread == 0 ? std::string("nothing unread")
                                     : std::to_string(unread) + " unread ('kith read --unread')");
      }
    }
    j["journal_list"] = perJournal;
  }
  std::ostringstream text;
  text << "home:        " << home.path() << "\n"
       << "id:          " << toHex(info.publicKey) << "\n"
       << "fingerprint: " << fp << "\n"
       << "key file:    " << (info.sealed ? "sealed with a passphrase" : "NOT encrypted (--no-passphrase)") << "\n"
       << "journals:    " << journals.size() << " (" << entries << (entries == 1 ? " entry" : " entries") << ")"
       << journalLines.str() << "\n"
       << "peers:       " << config.peers.size() << " known, " << config.follows.size() << " followed journal(s)\n"
       << "node:        "
       << (serving ? "serving on " + *serving : std::string("not running (start it with 'kith serve')"));
  if (serving) {
    text << "\npage:        "
         << (page ? "http://" + *page + "/ (open it with 'kith web')" : std::string("not served (--no-web)"));
  }
  if (reach.is_object()) {
    auto seen = [](const json& e) {
      return e.value("connected", false) ? std::string("connected")
             : e.contains("last_seen") && e["last_seen"].is_string()
                 ? "not connected, last seen " + e["last_seen"].get<std::string>()
                 : std::string("never reached");
    };
    size_t connected = 0;
    for (const auto& p : reach.value("peers", json::array())) connected += p.value("connected", false) ? 1 : 0;
    text << "\npeers now:   " << connected << " connected";
    for (const auto& p : reach.value("peers", json::array())) {
      text << "\n  " << terminalSafe(p.value("key", "").substr(0, 16)) << "  " << terminalSafe(seen(p));
    }
    const json relays = reach.value("relays", json::array());
    if (!relays.empty()) {
      text << "\nrelays:";
      for (const auto& r : relays) {
        text << "\n  " << terminalSafe(r.value("address", "")) << " for journal "
             << terminalSafe(r.value("journal", "").substr(0, 16)) << "  " << terminalSafe(seen(r));
        if (!r.value("connected", false) && r.contains("error") && r["error"].is_string()) {
          text << " (" << terminalSafe(r["error"].get<std::string>(), Newlines::ESCAPE) << ")";
        }
      }
    }
    if (connected == 0 && relays.empty()) {
      text << "\n             nothing is connected: no peer reached this node and no relay is in use";
    }
  }
  ctx.print(j, text.str());
}

}  // namespace

void addStatusCommands(Commands& commands) {
  commands.add("status", "Show this node's identity, journals and state", cmdStatus);
}

}  // namespace kith::cli
