// The identity commands: `kith init` makes this home's key pair, `kith id` shows it.
#include <cstdlib>
#include <sstream>

#include "cli/commands.h"
#include "cli/passphrase.h"
#include "crypto/fingerprint.h"

namespace kith::cli {
namespace {

using nlohmann::json;

constexpr size_t NAME_BYTES_MAX = 100;

struct InitArgs {
  std::string name;
  bool noPassphrase = false;
};

void cmdInit(Context& ctx, const InitArgs& args) {
  const Home& home = ctx.home();
  requireSize(args.name, NAME_BYTES_MAX, "name", "choose a shorter name");
  requireText(args.name, "name");
  if (home.hasIdentity()) {
    throw Error(ErrorKind::CONFLICT, "this home already has an identity (" + home.keyFilePath() + ")",
                "use it as it is, or choose another folder with --home DIR");
  }
  std::optional<crypto::SecretBuffer> passphrase;
  if (!args.noPassphrase) {
    passphrase = readNewPassphrase("Choose a passphrase for your kith identity: ");
    if (!passphrase) {
      throw Error(ErrorKind::USAGE, "no passphrase to seal the new identity with",
                  "set KITH_PASSPHRASE, run on a terminal, or use --no-passphrase for a headless node");
    }
  }
  crypto::Identity id = crypto::Identity::generate();
  Bytes file =
      crypto::writeKeyFile(id, args.name, passphrase ? std::optional<ByteView>(passphrase->view()) : std::nullopt);
  // The home is made in a temporary folder and renamed into place: a full disk or a crash at any
  // point leaves no half-made home, and the next 'kith init' starts clean.
  buildHomeAtomically(home.path(), [&](const Home& staging) {
    staging.writeKeyFile(file);
    staging.createStore();
  });
  std::string fp = crypto::fingerprint(id.publicKey());
  std::ostringstream text;
  text << "Created your kith identity in " << home.path() << "\n"
       << "  id:          " << toHex(id.publicKey()) << "\n"
       << "  fingerprint: " << fp << "\n";
  if (!passphrase) {
    text << "Note: the key file is NOT encrypted (--no-passphrase); it is readable only by you (mode 0600).\n";
  }
  // Most people who run init were invited by a friend: joining comes first, then starting one's own.
  text << "Next:\n"
       << "  - if a friend sent you an invite code, join their journal with 'kith accept CODE';\n"
       << "  - to start a journal of your own, 'kith journal create \"TITLE\"'.";
  ctx.print({{"home", home.path()},
             {"id", toHex(id.publicKey())},
             {"fingerprint", fp},
             {"name", args.name},
             {"sealed", passphrase.has_value()}},
            text.str());
}

void cmdId(Context& ctx) {
  crypto::KeyFileInfo info = ctx.keyInfo();
  std::string fp = crypto::fingerprint(info.publicKey);
  // The name is inside the key file: shown when it opens without asking.
  std::optional<std::string> name;
  if (!info.sealed || std::getenv("KITH_PASSPHRASE") != nullptr) name = ctx.unlock().name;
  std::ostringstream text;
  if (name && !name->empty()) text << "name:        " << terminalSafe(*name, Newlines::ESCAPE) << "\n";
  text << "id:          " << toHex(info.publicKey) << "\n"
       << "fingerprint: " << fp;
  json j = {{"id", toHex(info.publicKey)}, {"fingerprint", fp}, {"sealed", info.sealed}};
  j["name"] = name ? json(*name) : json(nullptr);
  ctx.print(j, text.str());
}

}  // namespace

void addIdentityCommands(Commands& commands) {
  commands.add<InitArgs>(
      "init", "Create this home's identity (a key pair sealed with a passphrase)",
      [](CLI::App& cmd, InitArgs& a) {
        cmd.add_option("--name", a.name, "Your name as friends know you");
        cmd.add_flag("--no-passphrase", a.noPassphrase, "Store the key unencrypted (mode 0600), for a headless node");
      },
      cmdInit);
  commands.add("id", "Show your public key and its fingerprint", cmdId);
}

}  // namespace kith::cli
