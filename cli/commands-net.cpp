// The commands that involve other nodes: grant, follow, peers, members, serve, sync.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/config.h"
#include "crypto/fingerprint.h"
#include "node/node.h"
#include "node/uv-event-port.h"

namespace kith::cli {
namespace {

using nlohmann::json;

std::shared_ptr<spdlog::logger> makeLogger(bool verbose) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("kith", sink);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

void cmdGrant(Context& ctx, const std::string& keyArg, const std::optional<std::string>& journalArg,
              const std::string& roleArg) {
  crypto::PublicKey member = parseKey(keyArg, "public key");
  auto role = protocol::tryParseRole(roleArg);
  if (!role || (*role != protocol::Role::SUBSCRIBER && *role != protocol::Role::COAUTHOR && *role != protocol::Role::RELAY)) {
    throw Error(ErrorKind::USAGE, "'" + roleArg + "' is not a role you can grant", "use subscriber, coauthor or relay");
  }
  store::JournalId journal = ctx.journal(journalArg);
  const Unlocked& me = ctx.unlock();
  if (member == me.identity.publicKey()) throw Error(ErrorKind::USAGE, "that is your own key", "give your friend's key");
  store::Keyring keyring = me.keyring();
  store::addMember(ctx.store(), keyring, journal, member, *role);
  Config config = Config::load(ctx.home());
  std::string fp = crypto::fingerprint(member);
  std::ostringstream text;
  text << "Granted " << toHex(member).substr(0, 16) << " (fingerprint " << fp << ") the role " << roleArg
       << " in journal " << toHex(journal).substr(0, 16) << ".\n"
       << "Compare the fingerprint with your friend, then give them this command:\n"
       << "  kith follow " << toHex(journal) << " --peer " << config.listen << " --key "
       << toHex(me.identity.publicKey());
  ctx.print({{"journal", toHex(journal)}, {"member", toHex(member)}, {"fingerprint", fp}, {"role", roleArg}},
            text.str());
}

void cmdMembers(Context& ctx, const std::optional<std::string>& journalArg) {
  store::JournalId journal = ctx.journal(journalArg);
  crypto::KeyFileInfo me = ctx.keyInfo();
  json list = json::array();
  std::ostringstream text;
  for (const auto& m : ctx.store().members(journal)) {
    std::string fp = crypto::fingerprint(m.key);
    list.push_back({{"key", toHex(m.key)}, {"fingerprint", fp}, {"role", protocol::roleName(m.role)},
                    {"active", m.active}, {"you", m.key == me.publicKey}});
    text << toHex(m.key).substr(0, 16) << "  " << fp << "  " << protocol::roleName(m.role)
         << (m.active ? "" : " (removed)") << (m.key == me.publicKey ? "  (you)" : "") << "\n";
  }
  ctx.print(list, text.str());
}

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
    list.push_back({{"address", node::formatHostPort(p.host, p.port)}, {"key", toHex(p.key)},
                    {"fingerprint", crypto::fingerprint(p.key)}});
    text << toHex(p.key).substr(0, 16) << "  " << node::formatHostPort(p.host, p.port) << "  "
         << crypto::fingerprint(p.key) << "\n";
  }
  if (config.peers.empty()) text << "No peers yet: add one with 'kith peers add HOST:PORT KEY' or 'kith follow'.";
  ctx.print(list, text.str());
}

// Everything a networked command needs, built and torn down in the one order that works:
// the loop first and last, the replica and node in between.
struct Runtime {
  node::UvIoContext io;
  std::shared_ptr<spdlog::logger> logger;
  Config config;
  std::unique_ptr<node::Replica> replica;

  Runtime(Context& ctx) : logger(makeLogger(ctx.options().verbose)), config(Config::load(ctx.home())) {
    const Unlocked& me = ctx.unlock();
    Config cfg = config;
    replica = std::make_unique<node::Replica>(ctx.store(), me.identity, me.storageKey.view(), *logger,
                                              [cfg](const protocol::JournalId& j) { return cfg.isFollowing(j); });
  }
};

struct SyncSummary {
  size_t peersReached = 0;
  uint64_t received = 0;
  uint64_t sent = 0;
  std::vector<std::string> failures;
};

// Connects to each peer in turn and runs one sync round with it.
SyncSummary syncWith(Runtime& rt, const std::vector<node::PeerAddress>& peers, unsigned attempts, bool json) {
  SyncSummary summary;
  auto& ws = rt.io.getWaitScope();
  auto& port = rt.io.getPort();
  for (const auto& peer : peers) {
    std::string label = toHex(peer.key).substr(0, 8);
    std::string where = node::formatHostPort(peer.host, peer.port);
    for (unsigned attempt = 1; attempt <= attempts; ++attempt) {
      auto lastPrint = std::chrono::steady_clock::now();
      auto progress = [&](const node::SyncProgress& p) {
        auto now = std::chrono::steady_clock::now();
        if (json || now - lastPrint < std::chrono::seconds(1)) return;
        lastPrint = now;
        std::cerr << "sync: journal " << toHex(p.journal).substr(0, 8) << " from " << label << ": received "
                  << p.received << " of " << p.expected << " entries, sent " << p.sent << std::endl;
      };
      try {
        auto results =
            node::connect(port, peer.host.c_str(), peer.port)
                .then([&](kj::Own<node::UvStream> stream) {
                  return node::secureInitiate(kj::mv(stream), rt.replica->identity(), peer.key, port.getTimer());
                })
                .then([&](node::SecureConnection conn) {
                  auto session = kj::heap<node::PeerSession>(*rt.replica, kj::mv(conn), true, port.getTimer());
                  auto promise = session->sync(progress);
                  return promise.attach(kj::mv(session));
                })
                .wait(ws);
        summary.peersReached++;
        for (const auto& r : results) {
          summary.received += r.received;
          summary.sent += r.sent;
          if (!json) {
            std::cerr << "sync: journal " << toHex(r.journal).substr(0, 8) << " with " << label << " (" << where
                      << "): received " << r.received << ", sent " << r.sent << std::endl;
          }
        }
        if (results.empty() && !json) {
          std::cerr << "sync: " << label << " (" << where << ") shares no journal with this node yet" << std::endl;
        }
        break;
      } catch (const kj::Exception& e) {
        std::string reason = e.getDescription().cStr();
        if (attempt == attempts) {
          summary.failures.push_back(label + " (" + where + "): " + reason);
        } else {
          kj::Promise<void> delay = port.getTimer().afterDelay((500u << (attempt - 1)) * kj::MILLISECONDS);
          delay.wait(ws);
        }
      }
    }
  }
  return summary;
}

void cmdSync(Context& ctx, bool once) {
  Runtime rt(ctx);
  if (rt.config.peers.empty()) {
    throw Error(ErrorKind::NOT_FOUND, "this node knows no peers",
                "add one with 'kith peers add HOST:PORT KEY' or 'kith follow JOURNAL --peer HOST:PORT --key KEY'");
  }
  SyncSummary s = syncWith(rt, rt.config.peers, once ? 1 : 3, ctx.options().json);
  for (const auto& f : s.failures) std::cerr << "sync: could not sync with " << f << std::endl;
  if (s.peersReached == 0) {
    throw Error(ErrorKind::IO, "could not sync with any peer", "check the addresses with 'kith peers list' and that the peers run 'kith serve'");
  }
  json failures = s.failures;
  ctx.print({{"peers_reached", s.peersReached}, {"received", s.received}, {"sent", s.sent}, {"failures", failures}},
            "Synced with " + std::to_string(s.peersReached) + " peer(s): received " + std::to_string(s.received) +
                " entries, sent " + std::to_string(s.sent));
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
    throw Error(ErrorKind::IO,
                "now following journal " + journalArg.substr(0, 16) + ", but the first sync failed: " +
                    (s.failures.empty() ? std::string("unknown reason") : s.failures[0]),
                "'kith serve' and 'kith sync' will keep trying; if the owner refused you, ask them to 'kith grant' your key");
  }
  bool held = ctx.store().journal(*journal).has_value();
  ctx.print({{"journal", toHex(*journal)}, {"owner", toHex(owner)}, {"received", s.received}, {"held", held}},
            held ? "Following journal " + journalArg.substr(0, 16) + ": received " + std::to_string(s.received) +
                       " entries. Read it with 'kith read --journal " + journalArg.substr(0, 16) + "'."
                 : "Following journal " + journalArg.substr(0, 16) +
                       ", but the owner's node did not share it: ask them to 'kith grant' your key ('kith id' shows it).");
}

void cmdServe(Context& ctx, const std::optional<std::string>& listenArg) {
  Runtime rt(ctx);
  auto listen = parseAddress(listenArg ? *listenArg : rt.config.listen);
  if (listenArg && listen.second == 0) listen.second = 0;
  node::NodeOptions options;
  options.listen = listen;
  options.peers = rt.config.peers;
  for (const auto& f : rt.config.follows) options.trusted.push_back(f.owner);
  const Unlocked& me = ctx.unlock();
  rt.logger->info("kith node {} (fingerprint {}) starting", toHex(me.identity.publicKey()).substr(0, 16),
                  crypto::fingerprint(me.identity.publicKey()));
  int signum = 0;
  {
    node::Node node(rt.io.getPort(), *rt.replica, options);
    node.start();
    signum = rt.io.getPort().runUntil(node::onShutdownSignal(rt.io.getPort()), rt.io.getWaitScope());
    rt.logger->info("stopping (signal {})", signum);
  }
  rt.replica.reset();
  rt.io.shutdown();
  rt.logger->info("stopped");
}

}  // namespace

void addNetCommands(CLI::App& app, Action& action) {
  {
    auto* cmd = app.add_subcommand("grant", "Add a friend's key to a journal (owner only)");
    auto key = std::make_shared<std::string>();
    auto journal = std::make_shared<std::optional<std::string>>();
    auto role = std::make_shared<std::string>("subscriber");
    cmd->add_option("PUBKEY", *key, "The friend's public key (from their 'kith id')")->required();
    cmd->add_option("--journal", *journal, "Journal id (or a unique prefix); optional with one journal");
    cmd->add_option("--role", *role, "subscriber (reads, comments) or coauthor (also posts)");
    cmd->callback([&action, key, journal, role] {
      action = [key, journal, role](Context& ctx) { cmdGrant(ctx, *key, *journal, *role); };
    });
  }
  {
    auto* cmd = app.add_subcommand("members", "List a journal's members and their fingerprints");
    auto journal = std::make_shared<std::optional<std::string>>();
    cmd->add_option("--journal", *journal, "Journal id (or a unique prefix); optional with one journal");
    cmd->callback([&action, journal] { action = [journal](Context& ctx) { cmdMembers(ctx, *journal); }; });
  }
  {
    auto* cmd = app.add_subcommand("follow", "Follow a friend's journal (after they granted your key)");
    auto journal = std::make_shared<std::string>();
    auto peer = std::make_shared<std::string>();
    auto key = std::make_shared<std::string>();
    cmd->add_option("JOURNAL_ID", *journal, "The journal's id, from its owner")->required();
    cmd->add_option("--peer", *peer, "The owner's node address, HOST:PORT")->required();
    cmd->add_option("--key", *key, "The owner's public key")->required();
    cmd->callback([&action, journal, peer, key] {
      action = [journal, peer, key](Context& ctx) { cmdFollow(ctx, *journal, *peer, *key); };
    });
  }
  {
    auto* peers = app.add_subcommand("peers", "Manage the nodes this node connects to");
    peers->require_subcommand(1);
    auto* add = peers->add_subcommand("add", "Add a peer by address and public key");
    auto address = std::make_shared<std::string>();
    auto key = std::make_shared<std::string>();
    add->add_option("ADDRESS", *address, "HOST:PORT")->required();
    add->add_option("PUBKEY", *key, "The peer's public key")->required();
    add->callback([&action, address, key] {
      action = [address, key](Context& ctx) { cmdPeersAdd(ctx, *address, *key); };
    });
    auto* list = peers->add_subcommand("list", "List known peers");
    list->callback([&action] { action = [](Context& ctx) { cmdPeersList(ctx); }; });
  }
  {
    auto* cmd = app.add_subcommand("serve", "Run the node: accept peers, dial known ones, replicate live");
    auto listen = std::make_shared<std::optional<std::string>>();
    cmd->add_option("--listen", *listen, "HOST:PORT to listen on (default from config.json: 127.0.0.1:7400)");
    cmd->callback([&action, listen] { action = [listen](Context& ctx) { cmdServe(ctx, *listen); }; });
  }
  {
    auto* cmd = app.add_subcommand("sync", "Catch up with known peers, then exit");
    auto once = std::make_shared<bool>(false);
    cmd->add_flag("--once", *once, "One attempt per peer, no retries");
    cmd->callback([&action, once] { action = [once](Context& ctx) { cmdSync(ctx, *once); }; });
  }
}

}  // namespace kith::cli
