// A node's home folder: the identity's key file, the LMDB store and the configuration.
//
//   HOME/identity.key   the sealed (or, with --no-passphrase, plain) key file, mode 0600
//   HOME/store/         LMDB (data.mdb, lock.mdb)
//   HOME/config.json    settings that are not secret: listen address, known peers
//
// A relay's home (`kith relay init`, cli/cmd-relay-operator.cpp) is another kind of home:
//   HOME/relay.json     the operator's settings; its presence is what makes a relay home
//   HOME/relay.key      the relay's key file, never sealed (a relay starts unattended), mode 0600
//   HOME/store/         the relay's LMDB store (store/relay-store.h), not a household's
// Household commands refuse a relay's home (readKeyFile, openStore and readConfig say so), and the
// relay commands refuse a household's.
//
// The folder is created with mode 0700. Its default is $KITH_HOME, else $XDG_DATA_HOME/kith, else
// ~/.local/share/kith.
// Caveats: errors are kith::Error with a hint for the user (NOT_FOUND: "run 'kith init'").
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "base/files.h"
#include "store/store.h"

namespace kith::cli {

class Home {
public:
  explicit Home(std::string path) : path_(std::move(path)) {}
  // $KITH_HOME, $XDG_DATA_HOME/kith or ~/.local/share/kith; throws Error(USAGE) when none is set.
  static std::string defaultPath();

  const std::string& path() const { return path_; }
  std::string keyFilePath() const { return path_ + "/identity.key"; }
  std::string storeDir() const { return path_ + "/store"; }
  std::string configPath() const { return path_ + "/config.json"; }
  std::string relayConfigPath() const { return path_ + "/relay.json"; }
  std::string relayKeyFilePath() const { return path_ + "/relay.key"; }

  // True when this is a relay's home (it has relay.json).
  bool isRelayHome() const;

  bool hasIdentity() const;
  // Creates the folder (0700) and store/ if needed. Throws Error(CONFLICT) when an identity exists.
  // Not atomic: `kith init` and `kith restore` use buildHomeAtomically instead.
  void create() const;
  // Writes the key file atomically (temporary file, fsync, rename) with mode 0600.
  void writeKeyFile(ByteView bytes) const;
  // Throws Error(NOT_FOUND) with a hint to run 'kith init' when the home has no identity.
  Bytes readKeyFile() const;
  // Opens the existing store; Error(CORRUPT) when it is missing or damaged. Only a home being
  // built (buildHomeAtomically) creates one: pass options.create.
  std::unique_ptr<store::Store> openStore(store::StoreOptions options = {}) const;
  // Creates the home's empty store (the first open); for a home being built.
  std::unique_ptr<store::Store> createStore(store::StoreOptions options = {}) const;

  nlohmann::json readConfig() const;                     // {} when there is none
  void writeConfig(const nlohmann::json& config) const;  // atomically

private:
  void requireExists() const;
  // Throws Error(USAGE) when this is a relay's home: a household command was given it.
  void requireHousehold() const;
  std::string path_;
};

// Builds a new home in a temporary folder beside `path`, calls `fill` with a Home on that folder
// (its store/ folder exists, empty), then fsyncs it and renames it into place, so that a failure at
// any point (a full disk, a crash, a damaged backup) leaves no half-made home and the next attempt
// starts clean. Throws Error(CONFLICT) when `path` holds an identity or is a folder that is not
// empty; on failure the temporary folder is removed and the error rethrown.
void buildHomeAtomically(const std::string& path, const std::function<void(const Home& staging)>& fill);

}  // namespace kith::cli
