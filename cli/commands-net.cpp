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
#include "node/uv/uv-event-port.h"
#include "protocol/invite.h"

#include <qrencode.h>

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
// the loop first and last, the replicator and node in between.
struct Runtime {
  node::UvIoContext io;
  std::shared_ptr<spdlog::logger> logger;
  Config config;
  std::unique_ptr<node::Replicator> replicator;

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  explicit Runtime(Context& ctx) : logger(makeLogger(ctx.options().verbose)), config(Config::load(ctx.home())) {
    const Unlocked& me = ctx.unlock();
    // The replicator asks the live config: `kith accept` adds a follow while the runtime exists.
    replicator = std::make_unique<node::Replicator>(ctx.store(), me.identity, me.storageKey.view(), *logger,
                                              [this](const protocol::JournalId& j) { return config.isFollowing(j); });
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
                  return node::secureInitiate(kj::mv(stream), rt.replicator->identity(), peer.key, port.getTimer());
                })
                .then([&](node::SecureConnection conn) {
                  auto session = kj::heap<node::PeerSession>(*rt.replicator, kj::mv(conn), true, port.getTimer());
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

// A remote peer's error, without capnp's "remote exception: " prefix.
std::string peerMessage(const kj::Exception& e) {
  std::string text = e.getDescription().cStr();
  const std::string prefix = "remote exception: ";
  if (text.rfind(prefix, 0) == 0) text.erase(0, prefix.size());
  return text;
}

int64_t parseDuration(const std::string& text) {
  constexpr int64_t MAX_MS = int64_t{90} * 24 * 3600 * 1000;
  if (text.size() >= 2 && text.size() <= 6) {
    std::string digits = text.substr(0, text.size() - 1);
    char unit = text.back();
    bool numeric = !digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos;
    int64_t scale = unit == 'd' ? 86400000 : unit == 'h' ? 3600000 : unit == 'm' ? 60000 : unit == 's' ? 1000 : 0;
    if (numeric && scale != 0) {
      int64_t ms = std::stoll(digits) * scale;
      if (ms > 0 && ms <= MAX_MS) return ms;
    }
  }
  throw Error(ErrorKind::USAGE, "'" + text + "' is not a duration of up to 90 days", "write e.g. 7d, 24h or 30m");
}

// The QR code of `text` in Unicode half blocks (two modules per character cell, with a quiet zone).
std::string qrText(const std::string& text) {
  QRcode* qr = QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  if (qr == nullptr) return "";
  const int quiet = 2;
  int size = qr->width + 2 * quiet;
  auto dark = [&](int x, int y) {
    x -= quiet;
    y -= quiet;
    if (x < 0 || y < 0 || x >= qr->width || y >= qr->width) return false;
    return (qr->data[y * qr->width + x] & 1) != 0;
  };
  std::string out;
  for (int y = 0; y < size; y += 2) {
    for (int x = 0; x < size; ++x) {
      bool top = dark(x, y), bottom = dark(x, y + 1);
      // Light modules are drawn as blocks so the code reads on dark terminals (inverted output).
      out += !top && !bottom ? "\u2588" : !top ? "\u2580" : !bottom ? "\u2584" : " ";
    }
    out += "\n";
  }
  QRcode_free(qr);
  return out;
}

void cmdInvite(Context& ctx, const std::optional<std::string>& journalArg, const std::string& roleArg,
               const std::string& expiresArg, const std::vector<std::string>& addressArgs) {
  auto role = protocol::tryParseRole(roleArg);
  if (!role || (*role != protocol::Role::SUBSCRIBER && *role != protocol::Role::COAUTHOR)) {
    throw Error(ErrorKind::USAGE, "'" + roleArg + "' is not a role for an invite", "use subscriber or coauthor");
  }
  int64_t validMs = parseDuration(expiresArg);
  store::JournalId journal = ctx.journal(journalArg);
  const Unlocked& me = ctx.unlock();
  auto mine = ctx.store().member(journal, me.identity.publicKey());
  if (!mine || !mine->active || mine->role != protocol::Role::OWNER) {
    throw Error(ErrorKind::AUTH, "only the journal's owner can invite", "ask the owner for an invite");
  }
  Config config = Config::load(ctx.home());
  std::vector<protocol::InviteAddress> addresses;
  for (const auto& a : addressArgs.empty() ? std::vector<std::string>{config.listen} : addressArgs) {
    auto [host, port] = parseAddress(a);
    if (host == "0.0.0.0" || host == "::") {
      throw Error(ErrorKind::USAGE, "the node listens on all addresses (" + a + "); the invite needs one friends can reach",
                  "give it with --address HOST:PORT");
    }
    if (host.size() > protocol::INVITE_HOST_BYTES_MAX) throw Error(ErrorKind::USAGE, "the host name is too long");
    addresses.push_back({host, port});
  }
  if (addresses.size() > protocol::INVITE_ADDRESSES_MAX) {
    throw Error(ErrorKind::USAGE, "an invite carries at most 4 addresses", "give fewer --address");
  }
  protocol::InviteCode code;
  code.node = me.identity.publicKey();
  code.secret.resize(protocol::INVITE_SECRET_BYTES);
  crypto::randomBytes(code.secret);
  code.addresses = addresses;
  store::Invite invite;
  invite.id = protocol::inviteId(code.secret);
  invite.journal = journal;
  invite.role = *role;
  invite.createdMs = nowMs();
  invite.expiresMs = invite.createdMs + validMs;
  ctx.store().putInvite(invite);
  std::string text = protocol::encodeInvite(code);
  std::ostringstream out;
  out << text << "\n";
  if (::isatty(STDOUT_FILENO) && !ctx.options().json) out << "\n" << qrText(text) << "\n";
  out << "One person can use this invite (as " << roleArg << ") until " << localTime(invite.expiresMs)
      << ". Keep 'kith serve' running so that their node can reach yours";
  bool loopback = false;
  for (const auto& a : addresses) loopback = loopback || a.host == "127.0.0.1" || a.host == "::1" || a.host == "localhost";
  if (loopback) out << "\nNote: " << node::formatHostPort(addresses[0].host, addresses[0].port)
                    << " is reachable from this machine only; use --address HOST:PORT for friends elsewhere";
  ctx.print({{"code", text}, {"id", toHex(invite.id).substr(0, 8)}, {"journal", toHex(journal)},
             {"role", roleArg}, {"expires", isoTime(invite.expiresMs)}},
            out.str());
}

void cmdInviteList(Context& ctx) {
  ctx.keyInfo();
  json list = json::array();
  std::ostringstream text;
  int64_t now = nowMs();
  for (const auto& i : ctx.store().invites()) {
    std::string status = i.used ? "used by " + toHex(i.usedBy).substr(0, 8) : now >= i.expiresMs ? "expired" : "open";
    list.push_back({{"id", toHex(i.id).substr(0, 8)}, {"journal", toHex(i.journal)}, {"role", protocol::roleName(i.role)},
                    {"status", status}, {"expires", isoTime(i.expiresMs)}});
    text << toHex(i.id).substr(0, 8) << "  journal " << toHex(i.journal).substr(0, 8) << "  "
         << protocol::roleName(i.role) << "  " << status << "  (until " << localTime(i.expiresMs) << ")\n";
  }
  if (list.empty()) text << "No invites: make one with 'kith invite'.";
  ctx.print(list, text.str());
}

void cmdInviteCancel(Context& ctx, const std::string& idArg) {
  ctx.keyInfo();
  std::vector<store::Invite> matches;
  for (const auto& i : ctx.store().invites()) {
    if (!idArg.empty() && toHex(i.id).rfind(idArg, 0) == 0) matches.push_back(i);
  }
  if (matches.empty()) throw Error(ErrorKind::NOT_FOUND, "there is no invite " + idArg, "see 'kith invite list'");
  if (matches.size() > 1) throw Error(ErrorKind::USAGE, "'" + idArg + "' matches several invites", "give more characters");
  ctx.store().cancelInvite(matches[0].id);
  ctx.print({{"id", toHex(matches[0].id).substr(0, 8)}, {"cancelled", true}},
            "Cancelled invite " + toHex(matches[0].id).substr(0, 8) + ": nobody can use it any more");
}

void cmdAccept(Context& ctx, const std::string& codeArg) {
  protocol::InviteCode code = protocol::decodeInvite(codeArg);
  const Unlocked& me = ctx.unlock();
  if (code.node == me.identity.publicKey()) throw Error(ErrorKind::USAGE, "this is your own invite", "give it to a friend");
  Runtime rt(ctx);
  auto& ws = rt.io.getWaitScope();
  auto& port = rt.io.getPort();
  std::vector<std::string> failures;
  std::optional<std::string> wrongNode;  // an address where another node (or no kith node) answered
  for (const auto& a : code.addresses) {
    std::string where = node::formatHostPort(a.host, a.port);
    kj::Own<node::PeerSession> session;
    try {
      auto conn = node::connect(port, a.host.c_str(), a.port)
                      .then([&](kj::Own<node::UvStream> stream) {
                        return node::secureInitiate(kj::mv(stream), me.identity, code.node, port.getTimer());
                      })
                      .wait(ws);
      session = kj::heap<node::PeerSession>(*rt.replicator, kj::mv(conn), true, port.getTimer());
    } catch (const kj::Exception& e) {
      std::string why = peerMessage(e);
      // A node without the invite's key cannot read our first handshake message and hangs up
      // (Noise XK authenticates it to the responder's key); one that answers with the wrong key
      // fails at message 2. Either way it is not the inviting node; another address may be.
      if (why.find("message 2") != std::string::npos ||
          why.find("closed the connection during the handshake") != std::string::npos) {
        wrongNode = where;
        failures.push_back(where + ": " + why);
        continue;
      }
      if (why.find("refused the connection") != std::string::npos) {
        throw Error(ErrorKind::AUTH,
                    "the inviting node has no open invite for you: this one was used, has expired or was cancelled",
                    "ask the journal's owner for a new invite");
      }
      failures.push_back(where + ": " + why);
      continue;
    }
    std::pair<protocol::JournalId, protocol::Role> granted;
    try {
      granted = session->redeem(code.secret).wait(ws);
    } catch (const kj::Exception& e) {
      throw Error(ErrorKind::AUTH, "the inviting node refused the invite: " + peerMessage(e), "ask them for a new invite");
    }
    auto [journal, role] = granted;
    rt.config.addFollow({journal, code.node});
    rt.config.addPeer({a.host, a.port, code.node});
    rt.config.save(ctx.home());
    uint64_t received = 0;
    try {
      auto results = session->sync([](const node::SyncProgress&) {}).wait(ws);
      for (const auto& r : results) received += r.received;
    } catch (const kj::Exception& e) {
      std::cerr << "accept: joined, but the first sync stopped: " << peerMessage(e) << std::endl;
    }
    session = nullptr;
    store::Keyring keyring = me.keyring();
    auto title = store::journalTitle(ctx.store(), keyring, journal);
    ctx.print({{"journal", toHex(journal)}, {"owner", toHex(code.node)}, {"role", protocol::roleName(role)},
               {"title", title ? json(*title) : json(nullptr)}, {"received", received}},
              "Joined \"" + (title ? *title : std::string("(title not yet received)")) + "\" as " +
                  protocol::roleName(role) + " (journal " + toHex(journal).substr(0, 16) + ", " +
                  std::to_string(received) + " entries). Owner's fingerprint: " + crypto::fingerprint(code.node) +
                  ". Read it with 'kith read --journal " + toHex(journal).substr(0, 16) + "'; keep 'kith serve' running for updates.");
    return;
  }
  if (wrongNode) {
    throw Error(ErrorKind::AUTH,
                "the node at " + *wrongNode + " is not the one this invite is for (a forged or outdated invite)",
                "ask the journal's owner for a new invite");
  }
  std::string all;
  for (const auto& f : failures) all += (all.empty() ? "" : "; ") + f;
  throw Error(ErrorKind::IO, "could not reach the inviting node (" + all + ")",
              "ask them to run 'kith serve', and check that their address is reachable from here");
}

}  // namespace

void addNetCommands(CLI::App& app, Action& action) {
  {
    auto* cmd = app.add_subcommand("invite", "Make a one-time invite code for a friend (owner only)");
    auto journal = std::make_shared<std::optional<std::string>>();
    auto role = std::make_shared<std::string>("subscriber");
    auto expires = std::make_shared<std::string>("7d");
    auto addresses = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--journal", *journal, "Journal id (or a unique prefix); optional with one journal");
    cmd->add_option("--role", *role, "subscriber (reads, comments, hearts) or coauthor (also posts)");
    cmd->add_option("--expires", *expires, "How long the invite stays valid: 7d, 24h, 30m (at most 90d)");
    cmd->add_option("--address", *addresses, "HOST:PORT where friends reach your node (default: the listen address)");
    cmd->callback([&action, journal, role, expires, addresses, cmd] {
      if (cmd->get_subcommands().empty()) {
        action = [journal, role, expires, addresses](Context& ctx) {
          cmdInvite(ctx, *journal, *role, *expires, *addresses);
        };
      }
    });
    auto* list = cmd->add_subcommand("list", "List this node's invites");
    list->callback([&action] { action = [](Context& ctx) { cmdInviteList(ctx); }; });
    auto* cancel = cmd->add_subcommand("cancel", "Cancel an invite");
    auto id = std::make_shared<std::string>();
    cancel->add_option("ID", *id, "The invite's id from 'kith invite list'")->required();
    cancel->callback([&action, id] { action = [id](Context& ctx) { cmdInviteCancel(ctx, *id); }; });
  }
  {
    auto* cmd = app.add_subcommand("accept", "Join a journal with an invite code");
    auto code = std::make_shared<std::string>();
    cmd->add_option("CODE", *code, "The invite code (kith-...)")->required();
    cmd->callback([&action, code] { action = [code](Context& ctx) { cmdAccept(ctx, *code); }; });
  }
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
