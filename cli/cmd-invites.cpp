// The invite commands: `kith invite` makes a one-time code (and lists or cancels them), `kith
// accept` joins a journal with one.
//
// `kith invite` prints the short code (protocol/invite.h: 24 characters, redeemed with CPace) when
// the invite is for one IPv4 address, else the long `kith-...` code; `--long` asks for the long
// code instead. The QR shows the code printed. Both codes of an invite work; `kith accept` takes
// either. The address is the one a running `kith serve` listens on (HOME/serve.lock), else
// config.json's `listen`, unless --address says otherwise.
#include <unistd.h>

#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/limits.h"
#include "cli/runtime.h"
#include "crypto/aead.h"
#include "crypto/fingerprint.h"
#include "node/invite-pake.h"
#include "node/limits.h"
#include "node/relay-invite.h"
#include "protocol/invite.h"
#include "protocol/roles.h"
#include "web/qr.h"

namespace kith::cli {
namespace {

using nlohmann::json;

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
  auto qr = web::qrEncode(text);
  if (!qr) return "";
  const int quiet = 2;
  int size = qr->width + 2 * quiet;
  auto dark = [&](int x, int y) { return qr->at(x - quiet, y - quiet); };
  std::string out;
  for (int y = 0; y < size; y += 2) {
    for (int x = 0; x < size; ++x) {
      bool top = dark(x, y), bottom = dark(x, y + 1);
      // Light modules are drawn as blocks so the code reads on dark terminals (inverted output).
      out += !top && !bottom ? "\u2588" : !top ? "\u2580" : !bottom ? "\u2584" : " ";
    }
    out += "\n";
  }
  return out;
}

// A slot no open short invite holds, or nullopt when all INVITE_SHORT_SLOTS are taken.
std::optional<uint8_t> freeShortSlot(const std::vector<store::Invite>& invites, int64_t now) {
  std::vector<bool> taken(protocol::INVITE_SHORT_SLOTS, false);
  for (const auto& i : invites) {
    if (i.hasShort && !i.used && !i.burnt() && now < i.expiresMs) taken[i.slot] = true;
  }
  // A random free slot, so that a slot says nothing about how many invites came before.
  uint8_t start = 0;
  crypto::randomBytes({&start, 1});
  for (size_t k = 0; k < taken.size(); ++k) {
    auto slot = static_cast<uint8_t>((start + k) % protocol::INVITE_SHORT_SLOTS);
    if (!taken[slot]) return slot;
  }
  return std::nullopt;
}

void cmdInvite(Context& ctx, const std::optional<std::string>& journalArg, const std::string& roleArg,
               const std::string& expiresArg, const std::vector<std::string>& addressArgs, bool viaRelay,
               const std::string& label, bool longCode) {
  if (label.size() > store::INVITE_LABEL_BYTES_MAX) {
    throw Error(ErrorKind::USAGE,
                "the label is " + std::to_string(label.size()) + " bytes, over the limit of " +
                    std::to_string(store::INVITE_LABEL_BYTES_MAX),
                "give a shorter --label, such as a first name");
  }
  auto role = protocol::tryParseRole(roleArg);
  if (!role || !protocol::isInvitable(*role)) {
    throw Error(ErrorKind::USAGE, "'" + roleArg + "' is not a role for an invite", "use subscriber or coauthor");
  }
  int64_t validMs = parseDuration(expiresArg);
  store::JournalId journal = ctx.journal(journalArg);
  const Unlocked& me = ctx.unlock();
  auto mine = ctx.store().member(journal, me.identity.publicKey());
  if (!mine || !mine->active || !protocol::mayIssue(mine->role, protocol::Control::Type::ADD_MEMBER)) {
    throw Error(ErrorKind::AUTH, "only the journal's owner can invite", "ask the owner for an invite");
  }
  Config config = Config::load(ctx.home());
  std::vector<protocol::InviteAddress> addresses;
  std::optional<protocol::RelayAddress> relay;
  if (viaRelay) {
    if (!addressArgs.empty()) {
      throw Error(ErrorKind::USAGE, "--via-relay and --address do not go together",
                  "the code carries the relay's address; give one or the other");
    }
    store::RelaysScan scan;
    store::scanRelays(ctx.store(), me.keyring(), journal, scan);
    if (scan.relays.empty()) {
      throw Error(ErrorKind::USAGE, "journal " + toHex(journal).substr(0, 16) + " uses no relay",
                  "add one first with 'kith relay add HOST:PORT KEY'");
    }
    relay = scan.relays[0];
    if (auto problem = protocol::inviteAddressProblem({relay->host, relay->port})) {
      throw Error(ErrorKind::USAGE, "an invite cannot carry the relay's address: " + *problem,
                  "add the relay by a numeric address or a host name");
    }
    addresses.push_back({relay->host, relay->port});
  }
  // The address a running serve listens on (its OS-chosen port too), else the configured one.
  std::string listening = servingAddress(ctx.home()).value_or(config.listen);
  for (const auto& a : viaRelay              ? std::vector<std::string>{}
                       : addressArgs.empty() ? std::vector<std::string>{listening}
                                             : addressArgs) {
    auto [host, port] = parseAddress(a);
    if (host == "0.0.0.0" || host == "::") {
      throw Error(ErrorKind::USAGE,
                  "the node listens on all addresses (" + a + "); the invite needs one friends can reach",
                  "give it with --address HOST:PORT");
    }
    // Checked before the invite is stored: an address the code cannot carry must not leave an open
    // invite behind (it lets strangers past the handshake) with no code printed.
    if (auto problem = protocol::inviteAddressProblem({host, port})) {
      throw Error(ErrorKind::USAGE, "an invite cannot carry the address " + terminalSafe(a) + ": " + *problem,
                  "give one friends can reach with --address HOST:PORT (a name like home.example.org, or an IP)");
    }
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
  if (relay) code.relay = relay->key;
  store::Invite invite;
  invite.id = protocol::inviteId(code.secret);
  invite.journal = journal;
  invite.role = *role;
  invite.createdMs = nowMs();
  invite.expiresMs = invite.createdMs + validMs;
  invite.label = label;
  // A short code for an invite reached at one IPv4 address (not through a relay).
  std::optional<protocol::ShortInviteCode> shortCode;
  if (!relay && addresses.size() == 1 && !longCode) {
    auto slot = freeShortSlot(ctx.store().invites(), invite.createdMs);
    protocol::ShortInviteCode candidate{addresses[0].host, addresses[0].port, slot.value_or(0),
                                        Bytes(protocol::INVITE_SHORT_PASSWORD_BYTES)};
    crypto::randomBytes(candidate.password);
    bool ipv4 = true;
    try {
      (void)protocol::encodeShortInvite(candidate);
    } catch (const Error&) {
      ipv4 = false;  // a host name or IPv6: the long code only
    }
    if (slot && ipv4) {
      shortCode = candidate;
      invite.hasShort = true;
      invite.slot = *slot;
      invite.password = candidate.password;
      invite.secret = code.secret;
    }
  }
  if (relay) {
    // The invite's mailbox on the relay is made now, so that the code works from the first moment;
    // `kith serve` answers what arrives in it (config.json's relay_invites says where to look).
    Runtime rt(ctx);
    auto token = rt.config.relayTokens.find(relay->key);
    try {
      node::registerInviteMailbox(rt.io.getPort(), me.identity, invite.id, *relay,
                                  token == rt.config.relayTokens.end() ? Bytes{} : token->second)
          .wait(rt.io.getWaitScope());
    } catch (const kj::Exception& e) {
      throw Error(ErrorKind::IO,
                  "the relay at " + node::formatHostPort(relay->host, relay->port) +
                      " did not take the invite: " + terminalSafe(peerMessage(e), Newlines::ESCAPE),
                  "check that the relay runs ('kith status' shows whether it was reached), or invite with --address");
    }
    rt.config.relayInvites.push_back({invite.id, *relay});
    while (rt.config.relayInvites.size() > CONFIG_RELAY_INVITES_MAX) {
      rt.config.relayInvites.erase(rt.config.relayInvites.begin());
    }
    rt.config.save(ctx.home());
  }
  ctx.store().putInvite(invite);
  std::string longText = protocol::encodeInvite(code);
  std::string text = shortCode ? protocol::encodeShortInvite(*shortCode) : longText;
  std::string id = toHex(invite.id).substr(0, 8);
  std::ostringstream out;
  out << text << "\n";
  if (::isatty(STDOUT_FILENO) && !ctx.options().json) out << "\n" << qrText(text) << "\n";
  out << "Invite " << id;
  if (!label.empty()) out << " for " << terminalSafe(label, Newlines::ESCAPE);
  out << ". One person can use it (as " << roleArg << ") until " << localTime(invite.expiresMs);
  if (shortCode) {
    out << ". Read the code out or send it; " << static_cast<int>(protocol::INVITE_SHORT_TRIES_MAX)
        << " wrong tries burn it";
  }
  if (relay) {
    out << ". It goes through the relay " << node::formatHostPort(relay->host, relay->port)
        << ": your node needs no open port, and answers when 'kith serve' runs";
  } else {
    out << ". Keep 'kith serve' running so that their node can reach yours";
  }
  bool loopback = false;
  for (const auto& a : addresses)
    loopback = loopback || a.host == "127.0.0.1" || a.host == "::1" || a.host == "localhost";
  if (loopback && !relay)
    out << "\nNote: " << node::formatHostPort(addresses[0].host, addresses[0].port)
        << " is reachable from this machine only; use --address HOST:PORT for friends elsewhere";
  ctx.print({{"code", text},
             {"long_code", longText},
             {"short", shortCode.has_value()},
             {"label", label},
             {"id", id},
             {"journal", toHex(journal)},
             {"role", roleArg},
             {"expires", isoTime(invite.expiresMs)}},
            out.str());
}

void cmdInviteList(Context& ctx) {
  ctx.keyInfo();
  json list = json::array();
  std::ostringstream text;
  int64_t now = nowMs();
  for (const auto& i : ctx.store().invites()) {
    std::string status = i.used               ? "used by " + toHex(i.usedBy).substr(0, 8)
                         : i.burnt()          ? "burnt after " + std::to_string(i.shortFailures) + " wrong codes"
                         : now >= i.expiresMs ? "expired"
                                              : "open";
    if (status == "open" && i.shortFailures > 0) {
      status += " (" + std::to_string(i.shortFailures) + " wrong code" + (i.shortFailures == 1 ? "" : "s") + ")";
    }
    list.push_back({{"id", toHex(i.id).substr(0, 8)},
                    {"label", i.label},
                    {"short", i.hasShort},
                    {"wrong_codes", i.shortFailures},
                    {"journal", toHex(i.journal)},
                    {"role", protocol::roleName(i.role)},
                    {"status", status},
                    {"expires", isoTime(i.expiresMs)}});
    text << toHex(i.id).substr(0, 8) << "  "
         << (i.label.empty() ? std::string("(no label)") : terminalSafe(i.label, Newlines::ESCAPE)) << "  journal "
         << toHex(i.journal).substr(0, 8) << "  " << protocol::roleName(i.role) << "  " << status << "  (until "
         << localTime(i.expiresMs) << ")\n";
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
  if (matches.size() > 1)
    throw Error(ErrorKind::USAGE, "'" + idArg + "' matches several invites", "give more characters");
  ctx.store().cancelInvite(matches[0].id);
  ctx.print({{"id", toHex(matches[0].id).substr(0, 8)}, {"cancelled", true}},
            "Cancelled invite " + toHex(matches[0].id).substr(0, 8) + ": nobody can use it any more");
}

// Joining through the relay the code names (specs/relay.md, "Joining").
void acceptThroughRelay(Context& ctx, const protocol::InviteCode& code) {
  const Unlocked& me = ctx.unlock();
  Runtime rt(ctx);
  auto& ws = rt.io.getWaitScope();
  auto& port = rt.io.getPort();
  protocol::RelayAddress relay{code.addresses[0].host, code.addresses[0].port, *code.relay};
  std::string where = node::formatHostPort(relay.host, relay.port);
  protocol::RedeemAnswer answer;
  bool timedOut = false;
  try {
    auto answered = node::redeemThroughRelay(port, me.identity, code.secret, relay, [&where]() {
      std::cerr << "Waiting for the owner's node: it answers through the relay " << where
                << " when it next connects (up to " << ACCEPT_RELAY_WAIT_MS / 1000 << " s)..." << std::endl;
    });
    auto timeout = port.getTimer().afterDelay(ACCEPT_RELAY_WAIT_MS * kj::MILLISECONDS).then([&timedOut]() {
      timedOut = true;
      return protocol::RedeemAnswer{};
    });
    answer = answered.exclusiveJoin(kj::mv(timeout)).wait(ws);
  } catch (const kj::Exception& e) {
    throw Error(ErrorKind::IO,
                "could not reach the relay at " + where + ": " + terminalSafe(peerMessage(e), Newlines::ESCAPE),
                "check your connection; the relay may be down for a while, so try again later");
  }
  if (timedOut) {
    throw Error(ErrorKind::IO, "the owner's node has not answered yet: it answers when it next connects to the relay",
                "run the same 'kith accept' again later; your request waits at the relay");
  }
  if (!answer.ok) {
    throw Error(ErrorKind::AUTH, "the owner's node refused the invite: " + terminalSafe(answer.reason),
                "ask the journal's owner for a new invite");
  }
  auto epochKey = crypto::openSealed(me.identity.boxPublicKey(), me.identity.boxSecret(), answer.sealedEpochKey);
  if (!epochKey || epochKey->size() != crypto::AEAD_KEY_BYTES) {
    throw Error(ErrorKind::AUTH, "the owner's answer does not open with your key", "ask the owner for a new invite");
  }
  rt.config.addFollow({answer.journal, code.node});
  rt.config.save(ctx.home());
  // The first entries come through the journal's mailbox on the same relay.
  node::RelayLink link(port, *rt.replicator, answer.journal, relay, code.node, {}, {});
  link.bootstrap(answer.epoch, std::move(*epochKey));
  const crypto::PublicKey mine = me.identity.publicKey();
  store::Store& store = ctx.store();
  auto joined = [&store, &answer, &mine]() {
    auto m = store.member(answer.journal, mine);
    return m && m->active;
  };
  uint64_t received = 0;
  try {
    received = link.syncOnce(joined, ACCEPT_RELAY_CATCHUP_MS).wait(ws).received;
  } catch (const kj::Exception& e) {
    std::cerr << "accept: joined, but the first sync through the relay stopped: "
              << terminalSafe(peerMessage(e), Newlines::ESCAPE) << std::endl;
  }
  store::Keyring keyring = me.keyring();
  auto title = store::journalTitle(store, keyring, answer.journal);
  std::string role = protocol::roleName(answer.role);
  ctx.print({{"journal", toHex(answer.journal)},
             {"owner", toHex(code.node)},
             {"role", role},
             {"relay", where},
             {"title", title ? json(*title) : json(nullptr)},
             {"received", received}},
            "Joined \"" + (title ? terminalSafe(*title) : std::string("(title not yet received)")) + "\" as " + role +
                " through the relay " + where + " (journal " + toHex(answer.journal).substr(0, 16) + ", " +
                std::to_string(received) + " entries). Owner's fingerprint: " + crypto::fingerprint(code.node) +
                ". Read it with 'kith read --journal " + toHex(answer.journal).substr(0, 16) +
                "'; keep 'kith serve' running for updates.");
}

// A short code: CPace with the node at the code's address (node/invite-pake.h), which reveals its
// key and the invite's secret; the rest is the long code's way.
protocol::InviteCode revealShortCode(Runtime& rt, const protocol::ShortInviteCode& shortCode) {
  auto& ws = rt.io.getWaitScope();
  auto& port = rt.io.getPort();
  std::string where = node::formatHostPort(shortCode.host, shortCode.port);
  node::ShortCodeAnswer answer;
  try {
    auto stream = node::connect(port, shortCode.host.c_str(), shortCode.port).wait(ws);
    answer = port.getTimer()
                 .timeoutAfter(node::HANDSHAKE_TIMEOUT_MS * kj::MILLISECONDS, node::askShortCode(*stream, shortCode))
                 .wait(ws);
  } catch (const kj::Exception& e) {
    throw Error(ErrorKind::IO,
                "could not check the code with the inviting node at " + where + ": " +
                    terminalSafe(peerMessage(e), Newlines::ESCAPE),
                "ask them to run 'kith serve', and check that their address is reachable from here");
  }
  if (answer.outcome == node::ShortCodeAnswer::Outcome::REFUSED) {
    throw Error(ErrorKind::AUTH, "the inviting node refused the code: " + terminalSafe(answer.reason, Newlines::ESCAPE),
                "ask the journal's owner for a new invite");
  }
  if (answer.outcome == node::ShortCodeAnswer::Outcome::WRONG_CODE) {
    throw Error(ErrorKind::AUTH,
                "the code is not right for this invite (the node counts wrong tries; after " +
                    std::to_string(protocol::INVITE_SHORT_TRIES_MAX) + " the invite stops working)",
                "check the code with the person who gave it to you, and type it again");
  }
  protocol::InviteCode code;
  code.node = answer.node;
  code.secret = answer.secret;
  code.addresses.push_back({shortCode.host, shortCode.port});
  return code;
}

void cmdAccept(Context& ctx, const std::string& codeArg) {
  std::optional<protocol::ShortInviteCode> shortCode;
  protocol::InviteCode code;
  if (protocol::isShortInviteText(codeArg)) {
    shortCode = protocol::decodeShortInvite(codeArg);
  } else {
    code = protocol::decodeInvite(codeArg);
  }
  const Unlocked& me = ctx.unlock();
  if (!shortCode && code.node == me.identity.publicKey())
    throw Error(ErrorKind::USAGE, "this is your own invite", "give it to a friend");
  if (!shortCode && code.relay) return acceptThroughRelay(ctx, code);
  Runtime rt(ctx);
  // A successful join is quiet: the first sync's notes (entries refused before the owner's chain
  // arrived, and the like) are for --verbose.
  if (!ctx.options().verbose) rt.logger->set_level(spdlog::level::err);
  if (shortCode) {
    code = revealShortCode(rt, *shortCode);
    if (code.node == me.identity.publicKey())
      throw Error(ErrorKind::USAGE, "this is your own invite", "give it to a friend");
  }
  auto& ws = rt.io.getWaitScope();
  auto& port = rt.io.getPort();
  std::vector<std::string> failures;
  std::optional<std::string> wrongNode;  // an address where another node (or no kith node) answered
  // A session with the inviting node at `a`; throws what connect and the handshake threw.
  auto dial = [&](const protocol::InviteAddress& a, std::optional<node::TransportFailure>& failed) {
    auto conn = node::connect(port, a.host.c_str(), a.port)
                    .then([&](kj::Own<node::UvStream> stream) {
                      return node::secureInitiate(kj::mv(stream), me.identity, code.node, port.getTimer(), &failed);
                    })
                    .wait(ws);
    return kj::heap<node::PeerSession>(*rt.replicator, kj::mv(conn), true, port.getTimer());
  };
  for (const auto& a : code.addresses) {
    std::string where = node::formatHostPort(a.host, a.port);
    kj::Own<node::PeerSession> session;
    std::optional<node::TransportFailure> failed;
    try {
      session = dial(a, failed);
    } catch (const kj::Exception& e) {
      std::string why = peerMessage(e);
      if (failed == node::TransportFailure::REFUSED) {
        throw Error(ErrorKind::AUTH,
                    "the inviting node has no open invite for you: this one was used, has expired or was cancelled",
                    "ask the journal's owner for a new invite");
      }
      // A node without the invite's key cannot read our first handshake message and hangs up
      // (Noise XK authenticates it to the responder's key); one that answers with the wrong key
      // fails at message 2. Either way it is not the inviting node; another address may be.
      if (failed == node::TransportFailure::NOT_THIS_NODE || failed == node::TransportFailure::PAYLOAD_IN_MESSAGE_2 ||
          failed == node::TransportFailure::CLOSED_DURING_HANDSHAKE) {
        wrongNode = where;
      }
      failures.push_back(where + ": " + why);
      continue;
    }
    std::pair<protocol::JournalId, protocol::Role> granted;
    try {
      granted = session->redeem(code.secret).wait(ws);
    } catch (const kj::Exception& e) {
      throw Error(ErrorKind::AUTH, "the inviting node refused the invite: " + peerMessage(e),
                  "ask them for a new invite");
    }
    auto [journal, role] = granted;
    rt.config.addFollow({journal, code.node});
    rt.config.addPeer({a.host, a.port, code.node});
    rt.config.save(ctx.home());
    // The inviting node serves a redeemer nothing but the redemption and then hangs up; as a member
    // now, connect again for the first sync.
    session = nullptr;
    uint64_t received = 0;
    try {
      std::optional<node::TransportFailure> again;
      session = dial(a, again);
      auto results = session->sync([](const node::SyncProgress&) {}).wait(ws);
      for (const auto& r : results) received += r.received;
    } catch (const kj::Exception& e) {
      std::cerr << "accept: joined, but the first sync stopped: " << terminalSafe(peerMessage(e), Newlines::ESCAPE)
                << std::endl;
    }
    session = nullptr;
    store::Keyring keyring = me.keyring();
    auto title = store::journalTitle(ctx.store(), keyring, journal);
    ctx.print({{"journal", toHex(journal)},
               {"owner", toHex(code.node)},
               {"role", protocol::roleName(role)},
               {"title", title ? json(*title) : json(nullptr)},
               {"received", received}},
              "Joined \"" + (title ? terminalSafe(*title) : std::string("(title not yet received)")) + "\" as " +
                  protocol::roleName(role) + " (" + std::to_string(received) + " entries; owner's fingerprint: " +
                  crypto::fingerprint(code.node) + ").\nRead it with 'kith read --journal " +
                  toHex(journal).substr(0, 16) + "'; keep 'kith serve' running for updates.");
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

struct InviteArgs {
  std::optional<std::string> journal;
  std::string role = "subscriber";
  std::string expires = "7d";
  std::vector<std::string> addresses;
  bool viaRelay = false;
  std::string label;
  bool longCode = false;
};

}  // namespace

void addInviteCommands(Commands& commands) {
  CLI::App& invite = commands.add<InviteArgs>(
      "invite", "Make a one-time invite code for a friend (owner only)",
      [](CLI::App& cmd, InviteArgs& a) {
        addJournalOption(cmd, a.journal);
        cmd.add_option("--role", a.role, "subscriber (reads, comments, hearts) or coauthor (also posts)");
        cmd.add_option("--expires", a.expires, "How long the invite stays valid: 7d, 24h, 30m (at most 90d)");
        cmd.add_option("--address", a.addresses,
                       "HOST:PORT where friends reach your node (default: the listen address)");
        cmd.add_flag("--via-relay", a.viaRelay,
                     "Redeem through the journal's relay: neither node needs an open port (see 'kith relay add')");
        cmd.add_option("--label", a.label, "Whom the invite is for, shown by 'kith invite list' (e.g. \"Aunt May\")");
        cmd.add_flag("--long", a.longCode,
                     "Print the long kith-... code (it carries the node's key) instead of the short one");
      },
      [](Context& ctx, const InviteArgs& a) {
        cmdInvite(ctx, a.journal, a.role, a.expires, a.addresses, a.viaRelay, a.label, a.longCode);
      });
  Commands inviteCommands = commands.under(invite);
  inviteCommands.add("list", "List this node's invites", cmdInviteList);
  inviteCommands.add<std::string>(
      "cancel", "Cancel an invite",
      [](CLI::App& cmd, std::string& id) {
        cmd.add_option("ID", id, "The invite's id from 'kith invite list'")->required();
      },
      cmdInviteCancel);
  commands.add<std::string>(
      "accept", "Join a journal with an invite code",
      [](CLI::App& cmd, std::string& code) {
        cmd.add_option("CODE", code, "The invite code: the short xxxx-xxxx-xxxx-xxxx-xxxx or the long kith-...")
            ->required();
      },
      cmdAccept);
}

}  // namespace kith::cli
