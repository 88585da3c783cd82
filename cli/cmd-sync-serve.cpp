// The commands that replicate: `kith sync` catches up with the known peers and exits; `kith serve`
// runs the node until a signal stops it.
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/limits.h"
#include "cli/notices.h"
#include "cli/runtime.h"
#include "crypto/fingerprint.h"
#include "node/relay-invite.h"
#include "node/relay-link.h"
#include "web/limits.h"
#include "web/server.h"

namespace kith::cli {
namespace {

using nlohmann::json;

// One round through every relay of every journal this node is a current member of: pull what the
// mailbox has, push what it lacks. Returns the relays reached; failures are added to `failures`.
size_t syncRelays(Runtime& rt, Context& ctx, SyncSummary& summary) {
  const Unlocked& me = ctx.unlock();
  store::Store& store = ctx.store();
  size_t reached = 0;
  for (const auto& info : store.journals()) {
    auto member = store.member(info.id, me.identity.publicKey());
    if (!member || !member->active) continue;
    store::RelaysScan scan;
    store::scanRelays(store, me.keyring(), info.id, scan);
    for (const auto& relay : scan.relays) {
      std::string where = node::formatHostPort(relay.host, relay.port);
      auto token = rt.config.relayTokens.find(relay.key);
      node::RelayLink link(rt.io.getPort(), *rt.replicator, info.id, relay, info.owner,
                           token == rt.config.relayTokens.end() ? Bytes{} : token->second, {});
      try {
        node::RelaySyncResult r = link.syncOnce().wait(rt.io.getWaitScope());
        summary.received += r.received;
        summary.sent += r.sent;
        ++reached;
      } catch (const kj::Exception& e) {
        summary.failures.push_back("relay " + where + " (journal " + toHex(info.id).substr(0, 8) +
                                   "): " + terminalSafe(e.getDescription().cStr(), Newlines::ESCAPE));
      }
    }
  }
  return reached;
}

void cmdSync(Context& ctx, bool once) {
  Runtime rt(ctx);
  SyncSummary s;
  if (!rt.config.peers.empty()) s = syncWith(rt, rt.config.peers, once ? 1 : 3, ctx.options().json);
  size_t relays = syncRelays(rt, ctx, s);
  if (rt.config.peers.empty() && relays == 0 && s.failures.empty()) {
    throw Error(ErrorKind::NOT_FOUND, "this node knows no peers and its journals use no relay",
                "add one with 'kith peers add HOST:PORT KEY' or 'kith follow JOURNAL --peer HOST:PORT --key KEY'");
  }
  for (const auto& f : s.failures) std::cerr << "sync: could not sync with " << f << std::endl;
  if (s.peersReached == 0 && relays == 0) {
    throw Error(ErrorKind::IO, "could not sync with any peer or relay",
                "check the addresses with 'kith peers list' and 'kith relay list', and that they run");
  }
  json failures = s.failures;
  ctx.print({{"peers_reached", s.peersReached},
             {"relays_reached", relays},
             {"received", s.received},
             {"sent", s.sent},
             {"failures", failures}},
            "Synced with " + std::to_string(s.peersReached) + " peer(s)" +
                (relays > 0 ? " and " + std::to_string(relays) + " relay(s)" : std::string()) + ": received " +
                std::to_string(s.received) + " entries, sent " + std::to_string(s.sent));
}

// HOME/serve-status.json: which peers and relays this running node reaches and when each was last
// seen, for `kith status`. Written when something changed, at most once per SERVE_STATUS_DELAY_MS.
class ServeStatus {
public:
  ServeStatus(const Home& home, node::UvEventPort& port) : path_(serveStatusPath(home)), port_(port) {}
  ~ServeStatus() { ::unlink(path_.c_str()); }
  void attach(node::Node* node, node::RelayLinks* relays) {
    node_ = node;
    relays_ = relays;
    changed();
  }
  void changed() {
    if (scheduled_ || node_ == nullptr) return;
    scheduled_ = true;
    tasks_.add(port_.getTimer().afterDelay(SERVE_STATUS_DELAY_MS * kj::MILLISECONDS).then([this]() {
      scheduled_ = false;
      write();
    }));
  }
  // What the node reaches now: {"written", "peers", "relays"}.
  json snapshot() const {
    json peers = json::array();
    for (const auto& p : node_->peerStates()) {
      peers.push_back({{"key", toHex(p.key)}, {"connected", p.connected}, {"last_seen", isoTime(p.lastSeenMs)}});
    }
    json relays = json::array();
    for (const auto& r : relays_->states()) {
      relays.push_back({{"journal", toHex(r.journal)},
                        {"address", node::formatHostPort(r.relay.host, r.relay.port)},
                        {"key", toHex(r.relay.key)},
                        {"connected", r.connected},
                        {"last_seen", r.lastSeenMs == 0 ? json(nullptr) : json(isoTime(r.lastSeenMs))},
                        {"error", r.lastError.empty() ? json(nullptr) : json(r.lastError)},
                        {"received", r.received},
                        {"sent", r.sent}});
    }
    return {{"written", isoTime(nowMs())}, {"peers", peers}, {"relays", relays}};
  }
  void write() {
    std::string text = snapshot().dump(2);
    try {
      writeFileAtomic(path_, asBytes(text), 0600);
    } catch (const std::exception&) {
      // Status only: a full disk must not stop the node.
    }
  }

private:
  std::string path_;
  node::UvEventPort& port_;
  node::Node* node_ = nullptr;
  node::RelayLinks* relays_ = nullptr;
  bool scheduled_ = false;
  struct Ignore final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}
  } ignore_;
  kj::TaskSet tasks_{ignore_};
};

std::vector<node::RelayInviteTarget> relayInviteTargets(const Home& home) {
  std::vector<node::RelayInviteTarget> out;
  try {
    for (const auto& i : Config::load(home).relayInvites) out.push_back({i.invite, i.relay});
  } catch (const std::exception&) {
    // A config being rewritten: the next store change reads it again.
  }
  return out;
}

struct ServeArgs {
  std::optional<std::string> listen;
  std::optional<std::string> web;
  bool noWeb = false;
  bool webAnyHost = false;
};

// The path of the running binary, for the page's child processes (`kith invite`, `kith accept`).
std::string selfPath() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("kith") : p.string();
}

void cmdServe(Context& ctx, const ServeArgs& args) {
  if (args.noWeb && args.web) {
    throw Error(ErrorKind::USAGE, "--web and --no-web do not go together", "give one or the other");
  }
  std::optional<std::pair<std::string, uint16_t>> webAt;
  if (!args.noWeb) {
    webAt = parseAddress(
        args.web.value_or(std::string(web::WEB_DEFAULT_HOST) + ":" + std::to_string(web::WEB_DEFAULT_PORT)), true);
    const std::string& h = webAt->first;
    bool loopback = h == "127.0.0.1" || h == "localhost" || h == "::1";
    if (!loopback && !args.webAnyHost) {
      throw Error(ErrorKind::USAGE,
                  "the page shows your journals decrypted: it is served on this machine only (127.0.0.1), not " + h,
                  "use --web 127.0.0.1:PORT, or add --web-any-host if a TLS proxy you run guards it");
    }
  }
  ServeLock lock(ctx.home());
  Runtime rt(ctx);
  auto listen = parseAddress(args.listen ? *args.listen : rt.config.listen, true);
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
    // Relays: one link per journal and relay (the journal names its relays), and the invites
    // redeemed through relays.
    ServeStatus status(ctx.home(), rt.io.getPort());
    node::RelayLinks relays(rt.io.getPort(), *rt.replicator, rt.config.relayTokens, [&status]() { status.changed(); });
    const Home& home = ctx.home();
    node::RelayInviteLinks invites(
        rt.io.getPort(), *rt.replicator, [&home]() { return relayInviteTargets(home); }, rt.config.relayTokens);
    node.setOnChange([&status]() { status.changed(); });
    status.attach(&node, &relays);
    ArrivalNotices notices(rt.io.getPort(), *rt.replicator, me.keyring(), *rt.logger,
                           parseNotifySettings(ctx.home().readConfig()));
    relays.start();
    invites.start();
    if (relays.size() > 0) rt.logger->info("using {} relay link(s)", relays.size());
    // The household's page (web/server.h), on the same loop.
    std::unique_ptr<web::WebServer> page;
    WebAddressFile webFile(ctx.home());
    if (webAt) {
      web::Household household{ctx.store(),
                               me.identity,
                               me.storageKey.view(),
                               me.name,
                               ctx.home().path(),
                               selfPath(),
                               [&status, &listen, &node]() {
                                 json s = status.snapshot();
                                 s["listen"] = node::formatHostPort(listen.first, node.listenPort());
                                 return s;
                               },
                               [&rt]() { rt.replicator->notifyChanged(); },
                               [&rt, &ctx, &node]() {
                                 // `kith accept` from the page follows a journal and adds its
                                 // owner's node: the running node takes both on.
                                 try {
                                   rt.config = Config::load(ctx.home());
                                 } catch (const std::exception& e) {
                                   rt.logger->warn("could not read config.json again: {}", e.what());
                                   return;
                                 }
                                 for (const auto& p : rt.config.peers) node.addPeer(p);
                               }};
      page = std::make_unique<web::WebServer>(rt.io.getPort(), std::move(household),
                                              web::WebOptions{webAt->first, webAt->second, webLoginsPath(ctx.home())},
                                              *rt.logger);
      try {
        page->start();
      } catch (const Error& e) {
        // The default port may be another household's on this machine: the node runs on
        // without its page. A port asked for with --web that cannot be had stops it.
        if (args.web) throw;
        rt.logger->warn("no web page: {}; give this node another with --web 127.0.0.1:PORT", e.what());
        page.reset();
      }
    }
    if (page) {
      rt.replicator->addListener(page.get());
      webFile.write(page->address());
      rt.logger->info("the family's page is at http://{}/ (sign in with 'kith web')", page->address());
    }
    KJ_DEFER(if (page) rt.replicator->removeListener(page.get()));
    signum = rt.io.getPort().runUntil(node::onShutdownSignal(rt.io.getPort()), rt.io.getWaitScope());
    node.setOnChange({});
    rt.logger->info("stopping (signal {})", signum);
  }
  rt.replicator.reset();
  rt.io.shutdown();
  rt.logger->info("stopped");
}

}  // namespace

void addSyncServeCommands(Commands& commands) {
  commands.add<ServeArgs>(
      "serve", "Run the node: accept peers, dial known ones, replicate live, serve the family's page",
      [](CLI::App& cmd, ServeArgs& a) {
        cmd.add_option("--listen", a.listen, "HOST:PORT to listen on (default from config.json: 127.0.0.1:7400)");
        cmd.add_option("--web", a.web, "HOST:PORT of the family's web page (default 127.0.0.1:7401)");
        cmd.add_flag("--no-web", a.noWeb, "Do not serve the web page");
        cmd.add_flag("--web-any-host", a.webAnyHost,
                     "Allow --web on an address other machines reach (put TLS in front of it)");
      },
      cmdServe);
  commands.add<bool>(
      "sync", "Catch up with known peers and the journals' relays, then exit",
      [](CLI::App& cmd, bool& once) { cmd.add_flag("--once", once, "One attempt per peer, no retries"); }, cmdSync);
}

}  // namespace kith::cli
