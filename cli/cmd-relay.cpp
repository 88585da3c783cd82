// `kith relay add|remove|list`: a household's relays (specs/relay.md, "Members"). The journal's
// owner records the relays in the journal itself (an encrypted RELAYS entry), so every member's
// node learns them and dials them on its own. The operator's side (`kith relay init|serve|token|
// status`) is in cli/cmd-relay-operator.cpp.
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "crypto/fingerprint.h"
#include "node/relay-client.h"
#include "protocol/relay.h"

namespace kith::cli {
namespace {

using nlohmann::json;

// A remote peer's error, without capnp's "remote exception: " prefix.
std::string relayMessage(const kj::Exception& e) {
  std::string text = e.getDescription().cStr();
  const std::string prefix = "remote exception: ";
  if (text.rfind(prefix, 0) == 0) text.erase(0, prefix.size());
  return terminalSafe(text, Newlines::ESCAPE);
}

std::string relayName(const protocol::RelayAddress& r) { return node::formatHostPort(r.host, r.port); }

// The journal, checked to be one this node owns.
struct Owned {
  store::JournalId journal;
  store::JournalInfo info;
  store::RelaysScan scan;
};

Owned requireOwned(Context& ctx, const std::optional<std::string>& journalArg, const char* what) {
  store::JournalId journal = ctx.journal(journalArg);
  const Unlocked& me = ctx.unlock();
  auto info = ctx.store().journal(journal);
  if (!info) throw Error(ErrorKind::NOT_FOUND, "this node does not hold that journal", "see 'kith journal list'");
  if (info->owner != me.identity.publicKey()) {
    throw Error(ErrorKind::AUTH, std::string("only the journal's owner can ") + what,
                "ask the owner; the relays they add reach your node by themselves");
  }
  Owned out{journal, *info, {}};
  store::scanRelays(ctx.store(), me.keyring(), journal, out.scan);
  return out;
}

struct RelayAddArgs {
  std::string address;
  std::string key;
  std::optional<std::string> token;
  std::optional<std::string> journal;
};

void cmdRelayAdd(Context& ctx, const RelayAddArgs& a) {
  auto [host, port] = parseAddress(a.address);
  crypto::PublicKey key = parseKey(a.key, "relay key");
  Bytes token = a.token ? parseRelayToken(*a.token) : Bytes{};
  Owned owned = requireOwned(ctx, a.journal, "add relays");
  const Unlocked& me = ctx.unlock();
  protocol::RelayAddress relay{host, port, key};
  std::vector<protocol::RelayAddress> relays = owned.scan.relays;
  bool known = false;
  for (auto& r : relays) {
    if (r.key != key) continue;
    known = true;
    if (r == relay) {
      ctx.print({{"journal", toHex(owned.journal)}, {"relay", relayName(relay)}, {"added", false}},
                "Journal " + toHex(owned.journal).substr(0, 16) + " already uses the relay " + relayName(relay));
      return;
    }
    r = relay;  // the relay moved: the new address replaces the old
  }
  if (!known && relays.size() >= protocol::RELAYS_MAX) {
    throw Error(ErrorKind::USAGE, "a journal can use at most " + std::to_string(protocol::RELAYS_MAX) + " relays",
                "remove one first with 'kith relay remove'");
  }
  if (!known) relays.push_back(relay);

  // Make the mailbox now, so that a wrong address, key or token shows here and not later in the
  // serve log of every member.
  Runtime rt(ctx);
  auto& ws = rt.io.getWaitScope();
  auto& loop = rt.io.getPort();
  auto epochKey = ctx.store().epochKey(owned.journal, owned.info.epoch, me.storageKey.view());
  if (!epochKey) throw Error(ErrorKind::CORRUPT, "this node holds no key of its own journal's current epoch");
  auto keys = protocol::journalMailboxKeys(epochKey->view(), owned.journal, owned.info.epoch, key);
  crypto::Identity admin = protocol::relayAdminKey(me.identity, owned.journal, key);
  try {
    auto conn = node::connectRelay(loop, loop.getTimer(), host, port, key).wait(ws);
    conn->create(keys, admin, token).wait(ws);
  } catch (const kj::Exception& e) {
    std::string why = relayMessage(e);
    bool tokenProblem = why.find("token") != std::string::npos;
    throw Error(ErrorKind::IO, "the relay at " + relayName(relay) + " did not take the journal: " + why,
                tokenProblem ? "ask the relay's operator for an access token and give it with --token"
                             : "check the address and key the relay's operator gave you, and that the relay runs");
  }
  if (!token.empty()) {
    rt.config.relayTokens[key] = token;
    rt.config.save(ctx.home());
  }
  store::setRelays(ctx.store(), me.keyring(), owned.journal, relays);
  ctx.print({{"journal", toHex(owned.journal)}, {"relay", relayName(relay)}, {"key", toHex(key)}, {"added", true}},
            "Journal " + toHex(owned.journal).substr(0, 16) + " now uses the relay " + relayName(relay) +
                " (fingerprint " + crypto::fingerprint(key) +
                "). Every member's node will reach the others through it, even while yours is off.\n"
                "Next: keep 'kith serve' running to send what is new; invite friends through it with "
                "'kith invite --via-relay'.");
}

struct RelayRemoveArgs {
  std::string relay;  // HOST:PORT or key
  std::optional<std::string> journal;
};

void cmdRelayRemove(Context& ctx, const RelayRemoveArgs& a) {
  Owned owned = requireOwned(ctx, a.journal, "remove relays");
  const Unlocked& me = ctx.unlock();
  std::vector<protocol::RelayAddress> kept;
  std::optional<protocol::RelayAddress> removed;
  for (const auto& r : owned.scan.relays) {
    if (toHex(r.key) == a.relay || relayName(r) == a.relay) {
      removed = r;
    } else {
      kept.push_back(r);
    }
  }
  if (!removed) {
    throw Error(ErrorKind::NOT_FOUND,
                "journal " + toHex(owned.journal).substr(0, 16) + " uses no relay " + terminalSafe(a.relay),
                "see 'kith relay list'");
  }
  store::setRelays(ctx.store(), me.keyring(), owned.journal, kept);
  // Delete the mailbox on the relay too; members stop using it when the change reaches them.
  std::string note;
  try {
    Runtime rt(ctx);
    auto& loop = rt.io.getPort();
    auto epochKey = ctx.store().epochKey(owned.journal, owned.info.epoch, me.storageKey.view());
    if (epochKey) {
      auto keys = protocol::journalMailboxKeys(epochKey->view(), owned.journal, owned.info.epoch, removed->key);
      crypto::Identity admin = protocol::relayAdminKey(me.identity, owned.journal, removed->key);
      auto conn = node::connectRelay(loop, loop.getTimer(), removed->host, removed->port, removed->key)
                      .wait(rt.io.getWaitScope());
      conn->remove(keys.id, admin).wait(rt.io.getWaitScope());
      note = " Its mailbox there is deleted.";
    }
  } catch (const kj::Exception& e) {
    note = " The relay could not be told to delete the mailbox (" + relayMessage(e) +
           "); it expires there by the operator's retention.";
  }
  ctx.print({{"journal", toHex(owned.journal)}, {"relay", relayName(*removed)}, {"removed", true}},
            "Journal " + toHex(owned.journal).substr(0, 16) + " no longer uses the relay " + relayName(*removed) + "." +
                note);
}

void cmdRelayList(Context& ctx, const std::optional<std::string>& journalArg) {
  const Unlocked& me = ctx.unlock();
  std::vector<store::JournalId> journals = ctx.journalsOrAll(journalArg);
  json list = json::array();
  std::ostringstream text;
  for (const auto& journal : journals) {
    store::RelaysScan scan;
    store::scanRelays(ctx.store(), me.keyring(), journal, scan);
    for (const auto& r : scan.relays) {
      list.push_back({{"journal", toHex(journal)}, {"address", relayName(r)}, {"key", toHex(r.key)}});
      text << "journal " << toHex(journal).substr(0, 16) << "  " << terminalSafe(relayName(r)) << "  " << toHex(r.key)
           << "\n";
    }
  }
  if (list.empty()) {
    text << "No journal here uses a relay. The owner adds one with 'kith relay add HOST:PORT KEY'.";
  } else {
    text << "Connections and when each relay was last seen: 'kith status'.";
  }
  ctx.print(list, text.str());
}

}  // namespace

void addRelayCommands(Commands& commands) {
  Commands relay = commands.group("relay", "Relays: use one for a journal, or run one for others");
  relay.add<RelayAddArgs>(
      "add", "Use a relay for a journal (owner only): members reach each other through it",
      [](CLI::App& cmd, RelayAddArgs& a) {
        cmd.add_option("ADDRESS", a.address, "The relay's HOST:PORT")->required();
        cmd.add_option("KEY", a.key, "The relay's key (64 hexadecimal digits, from its operator)")->required();
        cmd.add_option("--token", a.token, "An access token from the relay's operator, when the relay asks for one");
        addJournalOption(cmd, a.journal);
      },
      cmdRelayAdd);
  relay.add<RelayRemoveArgs>(
      "remove", "Stop using a relay for a journal (owner only)",
      [](CLI::App& cmd, RelayRemoveArgs& a) {
        cmd.add_option("RELAY", a.relay, "The relay's HOST:PORT or key, as 'kith relay list' shows it")->required();
        addJournalOption(cmd, a.journal);
      },
      cmdRelayRemove);
  relay.add<std::optional<std::string>>(
      "list", "List the relays of this node's journals",
      [](CLI::App& cmd, std::optional<std::string>& journal) { addJournalOption(cmd, journal); }, cmdRelayList);
  addRelayOperatorCommands(relay);
}

}  // namespace kith::cli
