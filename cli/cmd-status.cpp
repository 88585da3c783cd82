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
  std::ostringstream text;
  text << "home:        " << home.path() << "\n"
       << "id:          " << toHex(info.publicKey) << "\n"
       << "fingerprint: " << fp << "\n"
       << "key file:    " << (info.sealed ? "sealed with a passphrase" : "NOT encrypted (--no-passphrase)") << "\n"
       << "journals:    " << journals.size() << " (" << entries << (entries == 1 ? " entry" : " entries") << ")\n"
       << "peers:       " << config.peers.size() << " known, " << config.follows.size() << " followed journal(s)\n"
       << "node:        "
       << (serving ? "serving on " + *serving : std::string("not running (start it with 'kith serve')"));
  ctx.print(j, text.str());
}

}  // namespace

void addStatusCommands(Commands& commands) {
  commands.add("status", "Show this node's identity, journals and state", cmdStatus);
}

}  // namespace kith::cli
