// The commands about the nodes this node connects to and the journals it follows from them:
// peers add, peers list, peers remove, follow, unfollow.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "crypto/fingerprint.h"
#include "node/session.h"

namespace kith::cli {
namespace {

using nlohmann::json;

// The fewest hex digits of a key or id that a person may type to name it.
constexpr size_t PREFIX_CHARS_MIN = 4;
// How much of a key or id the commands show.
constexpr size_t SHORT_ID_CHARS = 16;

bool isHexPrefix(const std::string& text) {
  return text.size() >= PREFIX_CHARS_MIN && text.size() <= 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string shortKey(const Key32& key) { return toHex(key).substr(0, SHORT_ID_CHARS); }

// True when `key` is a current member of a journal this home holds, other than `except`: a node we
// replicate with for the sake of another journal, not only as the source of `except`.
bool isMemberElsewhere(store::Store& store, const crypto::PublicKey& key, const store::JournalId& except) {
  for (const auto& j : store.journals()) {
    if (j.id == except) continue;
    auto m = store.member(j.id, key);
    if (m && m->active) return true;
  }
  return false;
}

void cmdPeersAdd(Context& ctx, const std::string& addressArg, const std::string& keyArg) {
  auto [host, port] = parseAddress(addressArg);
  crypto::PublicKey key = parseKey(keyArg, "public key");
  ctx.keyInfo();  // a home with an identity
  Config config = Config::load(ctx.home());
  bool changed = config.addPeer({host, port, key});
  config.save(ctx.home());
  ctx.print({{"address", node::formatHostPort(host, port)}, {"key", toHex(key)}, {"changed", changed}},
            std::string(changed ? "Added" : "Already known:") + " peer " + shortKey(key) + " at " +
                node::formatHostPort(host, port) + " (fingerprint " + crypto::fingerprint(key) + ")");
}

void cmdPeersList(Context& ctx) {
  ctx.keyInfo();
  Config config = Config::load(ctx.home());
  json list = json::array();
  std::ostringstream text;
  for (const auto& p : config.peers) {
    json follows = json::array();
    for (const auto& f : config.follows) {
      if (f.owner == p.key) follows.push_back(toHex(f.journal));
    }
    list.push_back({{"address", node::formatHostPort(p.host, p.port)},
                    {"key", toHex(p.key)},
                    {"fingerprint", crypto::fingerprint(p.key)},
                    {"follows", follows}});
    text << shortKey(p.key) << "  " << node::formatHostPort(p.host, p.port) << "  " << crypto::fingerprint(p.key)
         << "\n";
    for (const auto& f : follows)
      text << "    following journal " << f.get<std::string>().substr(0, SHORT_ID_CHARS) << "\n";
  }
  if (config.peers.empty()) {
    text << "No peers yet: they are added when you accept an invite ('kith accept CODE'), or with 'kith peers add "
            "HOST:PORT KEY'.";
  }
  ctx.print(list, text.str());
}

void cmdPeersRemove(Context& ctx, const std::string& peerArg) {
  ctx.keyInfo();
  if (!isHexPrefix(peerArg)) {
    throw Error(ErrorKind::USAGE, "'" + peerArg + "' is not a peer's key",
                "give the key (or its first characters, at least 4) that 'kith peers list' shows");
  }
  Config config = Config::load(ctx.home());
  auto matches = config.peersMatching(peerArg);
  if (matches.empty()) {
    throw Error(ErrorKind::NOT_FOUND, "this home knows no peer whose key starts with " + peerArg,
                "see the known peers with 'kith peers list'");
  }
  if (matches.size() > 1) {
    throw Error(ErrorKind::USAGE, "'" + peerArg + "' matches " + std::to_string(matches.size()) + " peers",
                "give more characters of the key (see 'kith peers list')");
  }
  const node::PeerAddress& peer = matches[0];
  config.removePeer(peer.key);
  config.save(ctx.home());
  std::string where = node::formatHostPort(peer.host, peer.port);
  std::ostringstream text;
  text << "Removed peer " << shortKey(peer.key) << " at " << where << ": this node no longer connects to it.";
  json followed = json::array();
  for (const auto& f : config.follows) {
    if (f.owner == peer.key) followed.push_back(toHex(f.journal));
  }
  if (!followed.empty()) {
    text << "\nYou still follow " << countOf(followed.size(), "journal", "journals")
         << " from it; its entries come when that node connects to you. To stop, use 'kith unfollow "
         << followed[0].get<std::string>().substr(0, SHORT_ID_CHARS) << "'.";
  }
  ctx.print({{"key", toHex(peer.key)}, {"address", where}, {"still_following", followed}}, text.str());
}

// What dialling a journal's source found: its answers for the journals it shares with us, or why
// it could not be asked.
struct FollowProbe {
  std::optional<std::vector<node::SyncProgress>> shared;  // nullopt: not reached
  std::optional<node::TransportFailure> failed;           // the handshake's reason, when it had one
  std::string why;                                        // what failed, for people
};

// Connects to `peer` and runs one sync round with it: the round asks which journals the peer shares
// with us (its `journals` call answers only those we are a member of) and fetches them, the
// followed one included while `rt.config` follows it from this peer.
FollowProbe probe(Runtime& rt, const node::PeerAddress& peer) {
  FollowProbe out;
  auto& port = rt.io.getPort();
  try {
    out.shared = node::connect(port, peer.host.c_str(), peer.port)
                     .then([&](kj::Own<node::UvStream> stream) {
                       return node::secureInitiate(kj::mv(stream), rt.replicator->identity(), peer.key, port.getTimer(),
                                                   &out.failed);
                     })
                     .then([&](node::SecureConnection conn) {
                       auto session = kj::heap<node::PeerSession>(*rt.replicator, kj::mv(conn), true, port.getTimer());
                       auto promise = session->sync([](const node::SyncProgress&) {});
                       return promise.attach(kj::mv(session));
                     })
                     .wait(rt.io.getWaitScope());
  } catch (const kj::Exception& e) { out.why = terminalSafe(e.getDescription().cStr(), Newlines::ESCAPE); }
  return out;
}

// The error for a source that could not be asked, in words that say what to check.
Error unreachable(const FollowProbe& p, const std::string& where, const std::string& keyArg) {
  using node::TransportFailure;
  const char* anyway = "; or add --anyway to save the follow now and let 'kith serve' keep trying";
  if (p.failed == TransportFailure::REFUSED) {
    return Error(ErrorKind::AUTH, "the node at " + where + " refused you (" + p.why + ")",
                 std::string("ask the journal's owner to add your key with 'kith grant' ('kith id' shows it), or for "
                             "an invite code to use with 'kith accept CODE'") +
                     anyway);
  }
  if (p.failed == TransportFailure::NOT_THIS_NODE || p.failed == TransportFailure::PAYLOAD_IN_MESSAGE_2 ||
      p.failed == TransportFailure::CLOSED_DURING_HANDSHAKE) {
    return Error(
        ErrorKind::AUTH,
        "a node answered at " + where + ", but not the one with key " + keyArg.substr(0, SHORT_ID_CHARS) + "...",
        std::string("check the --key and the address with the journal's owner") + anyway);
  }
  return Error(ErrorKind::IO, "could not reach " + where + " (" + p.why + "), so the journal could not be checked",
               std::string("check the address, and that the owner's 'kith serve' is running") + anyway);
}

struct FollowArgs {
  std::string journal;
  std::string peer;
  std::string key;
  bool anyway = false;
};

void saveFollow(Context& ctx, const Follow& follow, const node::PeerAddress& peer) {
  Config config = Config::load(ctx.home());
  config.addFollow(follow);
  config.addPeer(peer);
  config.save(ctx.home());
}

// Follows a journal only once its source has shown that it shares the journal with us: a mistyped
// id, or a journal whose owner has not added us, is refused and saves nothing. An unreachable
// source is refused too, unless --anyway (then the follow is saved for `kith serve` to retry).
void cmdFollow(Context& ctx, const FollowArgs& a) {
  auto journal = tryKey32FromHex(a.journal);
  if (!journal) {
    throw Error(ErrorKind::USAGE, "'" + a.journal + "' is not a journal id",
                "give the whole id (64 letters and digits) from the 'kith follow' command the journal's owner sent "
                "you; with an invite code, use 'kith accept CODE' instead");
  }
  auto [host, port] = parseAddress(a.peer);
  crypto::PublicKey owner = parseKey(a.key, "public key");
  const Unlocked& me = ctx.unlock();
  if (owner == me.identity.publicKey()) {
    throw Error(ErrorKind::USAGE, "the --key given is your own",
                "give the key of the journal owner's node, from the command they sent you");
  }
  std::string shortJournal = toHex(*journal).substr(0, SHORT_ID_CHARS);
  std::string where = node::formatHostPort(host, port);
  node::PeerAddress peer{host, port, owner};
  Follow follow{*journal, owner};

  Runtime rt(ctx);
  // During a first catch-up some entries arrive before what authorises them and are refused, then
  // taken again; those warnings are for --verbose, not for someone following a friend's journal.
  if (!ctx.options().verbose) rt.logger->set_level(spdlog::level::err);
  // In memory only, until the peer has shown the journal: lets the replicator take its entries.
  rt.config.addFollow(follow);
  bool terminal = isatty(STDERR_FILENO) == 1 && !ctx.options().json;
  if (terminal) std::cerr << "Asking " << where << " for journal " << shortJournal << "..." << std::endl;
  FollowProbe p = probe(rt, peer);

  if (!p.shared) {
    Error e = unreachable(p, where, a.key);
    if (!a.anyway) throw e;
    saveFollow(ctx, follow, peer);
    std::cerr << "kith: warning: " << terminalSafe(e.what(), Newlines::ESCAPE) << std::endl;
    ctx.print({{"journal", toHex(*journal)}, {"owner", toHex(owner)}, {"checked", false}, {"held", false}},
              "Saved the follow of journal " + shortJournal + " without checking it: 'kith serve' and 'kith sync' " +
                  "will keep trying " + where + ". If it was a mistake, 'kith unfollow " + shortJournal +
                  "' removes it.");
    return;
  }
  auto it = std::find_if(p.shared->begin(), p.shared->end(),
                         [&](const node::SyncProgress& s) { return s.journal == *journal; });
  if (it == p.shared->end()) {
    throw Error(ErrorKind::NOT_FOUND,
                "the node at " + where + " has no journal " + shortJournal + " that it shares with you; nothing saved",
                "check the journal id with its owner (it is in the 'kith follow' command they sent you); if it is "
                "right, ask them to add your key with 'kith grant' ('kith id' shows it)");
  }
  saveFollow(ctx, follow, peer);

  store::Store& store = ctx.store();
  auto title = store::journalTitle(store, me.keyring(), *journal);
  std::string name = title ? "\"" + terminalSafe(*title, Newlines::ESCAPE) + "\"" : "journal " + shortJournal;
  std::string read = store.journals().size() > 1 ? "kith read --journal " + shortJournal.substr(0, 8) : "kith read";
  ctx.print({{"journal", toHex(*journal)},
             {"owner", toHex(owner)},
             {"checked", true},
             {"held", store.journal(*journal).has_value()},
             {"title", title ? json(*title) : json(nullptr)},
             {"received", it->received}},
            "Following " + name + ": received " + countOf(it->received, "entry", "entries") + ". Read it with '" +
                read + "'.");
}

// The follows that `journalArg` names: by the id's first characters (a follow may name a journal
// this home does not hold, such as a mistyped one), else by a journal held here (id or title).
std::vector<Follow> followsNamed(Context& ctx, const Config& config, const std::string& journalArg) {
  if (isHexPrefix(journalArg)) {
    auto matches = config.followsMatching(journalArg);
    if (!matches.empty()) return matches;
  }
  store::JournalId id = ctx.journal(journalArg);
  std::vector<Follow> out;
  for (const auto& f : config.follows) {
    if (f.journal == id) out.push_back(f);
  }
  if (out.empty()) {
    auto info = ctx.store().journal(id);
    if (info && info->owner == ctx.keyInfo().publicKey) {
      throw Error(ErrorKind::USAGE, "journal " + toHex(id).substr(0, SHORT_ID_CHARS) + " is your own",
                  "there is nothing to unfollow; to remove a friend from it, use 'kith revoke'");
    }
    throw Error(ErrorKind::NOT_FOUND, "this home does not follow journal " + toHex(id).substr(0, SHORT_ID_CHARS),
                "'kith peers list' shows the journals followed");
  }
  return out;
}

void cmdUnfollow(Context& ctx, const std::string& journalArg) {
  ctx.keyInfo();
  Config config = Config::load(ctx.home());
  auto matches = followsNamed(ctx, config, journalArg);
  if (matches.size() > 1) {
    throw Error(ErrorKind::USAGE,
                "'" + journalArg + "' matches " + std::to_string(matches.size()) + " followed journals",
                "give more characters of the id ('kith peers list' shows them)");
  }
  const Follow f = matches[0];
  config.removeFollow(f.journal);
  // The source's address goes too when nothing else needs it (no other followed journal comes from
  // it, it is no member of another journal held here), so that this node stops dialling it.
  bool stillUsed = std::any_of(config.follows.begin(), config.follows.end(),
                               [&](const Follow& other) { return other.owner == f.owner; });
  store::Store& store = ctx.store();
  bool peerRemoved = !stillUsed && !isMemberElsewhere(store, f.owner, f.journal) && config.removePeer(f.owner);
  config.save(ctx.home());
  bool held = store.journal(f.journal).has_value();
  std::string text = "No longer following journal " + toHex(f.journal).substr(0, SHORT_ID_CHARS) + ".";
  if (peerRemoved) text += " Removed its node " + shortKey(f.owner) + " from your peers too.";
  if (held) text += " What was received stays in this home.";
  ctx.print({{"journal", toHex(f.journal)}, {"owner", toHex(f.owner)}, {"peer_removed", peerRemoved}, {"held", held}},
            text);
}

struct PeersAddArgs {
  std::string address;
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
        cmd.add_flag("--anyway", a.anyway,
                     "Save the follow even when the owner's node cannot be reached now ('kith serve' keeps trying)");
      },
      cmdFollow);
  commands.add<std::string>(
      "unfollow", "Stop following a journal (what was received stays)",
      [](CLI::App& cmd, std::string& journal) {
        cmd.add_option("JOURNAL", journal, "The journal's id (or its first characters) or title")->required();
      },
      cmdUnfollow);
  Commands peers = commands.group("peers", "Manage the nodes this node connects to");
  peers.add<PeersAddArgs>(
      "add", "Add a peer by address and public key",
      [](CLI::App& cmd, PeersAddArgs& a) {
        cmd.add_option("ADDRESS", a.address, "HOST:PORT")->required();
        cmd.add_option("PUBKEY", a.key, "The peer's public key")->required();
      },
      [](Context& ctx, const PeersAddArgs& a) { cmdPeersAdd(ctx, a.address, a.key); });
  peers.add("list", "List known peers and the journals followed from them", cmdPeersList);
  peers.add<std::string>(
      "remove", "Forget a peer: this node stops connecting to it",
      [](CLI::App& cmd, std::string& peer) {
        cmd.add_option("PEER", peer, "The peer's key (or its first characters) from 'kith peers list'")->required();
      },
      cmdPeersRemove);
}

}  // namespace kith::cli
