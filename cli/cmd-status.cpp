// `kith status`: this node's identity, journals, peers and whether it serves.
#include <sstream>

#include "cli/commands.h"
#include "cli/config.h"
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
  std::ostringstream text;
  text << "home:        " << home.path() << "\n"
       << "id:          " << toHex(info.publicKey) << "\n"
       << "fingerprint: " << fp << "\n"
       << "key file:    " << (info.sealed ? "sealed with a passphrase" : "NOT encrypted (--no-passphrase)") << "\n"
       << "journals:    " << journals.size() << " (" << entries << (entries == 1 ? " entry" : " entries") << ")\n"
       << "peers:       " << config.peers.size() << " known, " << config.follows.size() << " followed journal(s)\n"
       << "node:        "
       << (serving ? "serving on " + *serving : std::string("not running (start it with 'kith serve')"));
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
