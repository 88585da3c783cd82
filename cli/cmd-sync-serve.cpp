// The commands that replicate: `kith sync` catches up with the known peers and exits; `kith serve`
// runs the node until a signal stops it.
#include <iostream>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "crypto/fingerprint.h"

namespace kith::cli {
namespace {

using nlohmann::json;

void cmdSync(Context& ctx, bool once) {
  Runtime rt(ctx);
  if (rt.config.peers.empty()) {
    throw Error(ErrorKind::NOT_FOUND, "this node knows no peers",
                "add one with 'kith peers add HOST:PORT KEY' or 'kith follow JOURNAL --peer HOST:PORT --key KEY'");
  }
  SyncSummary s = syncWith(rt, rt.config.peers, once ? 1 : 3, ctx.options().json);
  for (const auto& f : s.failures) std::cerr << "sync: could not sync with " << f << std::endl;
  if (s.peersReached == 0) {
    throw Error(ErrorKind::IO, "could not sync with any peer",
                "check the addresses with 'kith peers list' and that the peers run 'kith serve'");
  }
  json failures = s.failures;
  ctx.print({{"peers_reached", s.peersReached}, {"received", s.received}, {"sent", s.sent}, {"failures", failures}},
            "Synced with " + std::to_string(s.peersReached) + " peer(s): received " + std::to_string(s.received) +
                " entries, sent " + std::to_string(s.sent));
}

void cmdServe(Context& ctx, const std::optional<std::string>& listenArg) {
  ServeLock lock(ctx.home());
  Runtime rt(ctx);
  auto listen = parseAddress(listenArg ? *listenArg : rt.config.listen, true);
  node::NodeOptions options;
  options.listen = listen;
  options.peers = rt.config.peers;
  for (const auto& f : rt.config.follows) options.trusted.push_back(f.owner);
  const Unlocked& me = ctx.unlock();
  rt.logger->info("kith node {} (fingerprint {}) starting", toHex(me.identity.publicKey()).substr(0, 16),
                  crypto::fingerprint(me.identity.publicKey()));
  int signum = 0;
  {
    node::Node node(rt.io.getPort(), *rt.replicator, options);
    try {
      node.start();
    } catch (const kj::Exception& e) {
      throw Error(ErrorKind::IO, e.getDescription().cStr(),
                  "choose another address with --listen HOST:PORT, or stop what uses it");
    }
    lock.setAddress(node::formatHostPort(listen.first, node.listenPort()));
    signum = rt.io.getPort().runUntil(node::onShutdownSignal(rt.io.getPort()), rt.io.getWaitScope());
    rt.logger->info("stopping (signal {})", signum);
  }
  rt.replicator.reset();
  rt.io.shutdown();
  rt.logger->info("stopped");
}

}  // namespace

void addSyncServeCommands(Commands& commands) {
  commands.add<std::optional<std::string>>(
      "serve", "Run the node: accept peers, dial known ones, replicate live",
      [](CLI::App& cmd, std::optional<std::string>& listen) {
        cmd.add_option("--listen", listen, "HOST:PORT to listen on (default from config.json: 127.0.0.1:7400)");
      },
      cmdServe);
  commands.add<bool>(
      "sync", "Catch up with known peers, then exit",
      [](CLI::App& cmd, bool& once) { cmd.add_flag("--once", once, "One attempt per peer, no retries"); }, cmdSync);
}

}  // namespace kith::cli
