// The commands about the nodes this node connects to: peers add, peers list, follow.
#include <sstream>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "crypto/fingerprint.h"

namespace kith::cli {
namespace {

using nlohmann::json;

void cmdPeersAdd(Context& ctx, const std::string& addressArg, const std::string& keyArg) {
  auto [host, port] = parseAddress(addressArg);
  crypto::PublicKey key = parseKey(keyArg, "public key");
  ctx.keyInfo();  // a home with an identity
  Config config = Config::load(ctx.home());
  bool changed = config.addPeer({host, port, key});
  config.save(ctx.home());
  ctx.print({{"address", node::formatHostPort(host, port)}, {"key", toHex(key)}, {"changed", changed}},
            std::string(changed ? "Added" : "Already known:") + " peer " + toHex(key).substr(0, 16) + " at " +
                node::formatHostPort(host, port) + " (fingerprint " + crypto::fingerprint(key) + ")");
}

void cmdPeersList(Context& ctx) {
  ctx.keyInfo();
  Config config = Config::load(ctx.home());
  json list = json::array();
  std::ostringstream text;
  for (const auto& p : config.peers) {
    list.push_back({{"address", node::formatHostPort(p.host, p.port)},
                    {"key", toHex(p.key)},
                    {"fingerprint", crypto::fingerprint(p.key)}});
    text << toHex(p.key).substr(0, 16) << "  " << node::formatHostPort(p.host, p.port) << "  "
         << crypto::fingerprint(p.key) << "\n";
  }
  if (config.peers.empty()) text << "No peers yet: add one with 'kith peers add HOST:PORT KEY' or 'kith follow'.";
  ctx.print(list, text.str());
}

void cmdFollow(Context& ctx, const std::string& journalArg, const std::string& peerArg, const std::string& keyArg) {
  auto journal = tryKey32FromHex(journalArg);
  if (!journal) {
    throw Error(ErrorKind::USAGE, "'" + journalArg + "' is not a journal id",
                "give the whole id (64 hexadecimal digits) from the journal's owner");
  }
  auto [host, port] = parseAddress(peerArg);
  crypto::PublicKey owner = parseKey(keyArg, "public key");
  ctx.unlock();
  Config config = Config::load(ctx.home());
  config.addFollow({*journal, owner});
  config.addPeer({host, port, owner});
  config.save(ctx.home());
  Runtime rt(ctx);
  SyncSummary s = syncWith(rt, {{host, port, owner}}, 1, ctx.options().json);
  if (s.peersReached == 0) {
    throw Error(
        ErrorKind::IO,
        "now following journal " + journalArg.substr(0, 16) +
            ", but the first sync failed: " + (s.failures.empty() ? std::string("unknown reason") : s.failures[0]),
        "'kith serve' and 'kith sync' will keep trying; if the owner refused you, ask them to 'kith grant' your key");
  }
  bool held = ctx.store().journal(*journal).has_value();
  ctx.print(
      {{"journal", toHex(*journal)}, {"owner", toHex(owner)}, {"received", s.received}, {"held", held}},
      held ? "Following journal " + journalArg.substr(0, 16) + ": received " + std::to_string(s.received) +
                 " entries. Read it with 'kith read --journal " + journalArg.substr(0, 16) + "'."
           : "Following journal " + journalArg.substr(0, 16) +
                 ", but the owner's node did not share it: ask them to 'kith grant' your key ('kith id' shows it).");
}

struct PeersAddArgs {
  std::string address;
  std::string key;
};

struct FollowArgs {
  std::string journal;
  std::string peer;
  std::string key;
};

}  // namespace

void addPeerCommands(Commands& commands) {
  commands.add<FollowArgs>(
      "follow", "Follow a friend's journal (after they granted your key)",
      [](CLI::App& cmd, FollowArgs& a) {
        cmd.add_option("JOURNAL_ID", a.journal, "The journal's id, from its owner")->required();
        cmd.add_option("--peer", a.peer, "The owner's node address, HOST:PORT")->required();
        cmd.add_option("--key", a.key, "The owner's public key")->required();
      },
      [](Context& ctx, const FollowArgs& a) { cmdFollow(ctx, a.journal, a.peer, a.key); });
  Commands peers = commands.group("peers", "Manage the nodes this node connects to");
  peers.add<PeersAddArgs>(
      "add", "Add a peer by address and public key",
      [](CLI::App& cmd, PeersAddArgs& a) {
        cmd.add_option("ADDRESS", a.address, "HOST:PORT")->required();
        cmd.add_option("PUBKEY", a.key, "The peer's public key")->required();
      },
      [](Context& ctx, const PeersAddArgs& a) { cmdPeersAdd(ctx, a.address, a.key); });
  peers.add("list", "List known peers", cmdPeersList);
}

}  // namespace kith::cli
