// The home folder: its layout and permissions, the key file, the configuration, and where the
// home is when no --home is given.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "cli/home.h"
#include "crypto/key-file.h"
#include "tests/support/errors.h"
#include "tests/support/temp-dir.h"

namespace {

using namespace kith;
using namespace kith::cli;
using test::errorOf;
using test::kindName;
using test::TempDir;

unsigned modeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

bool isDir(const std::string& path) { return std::filesystem::is_directory(path); }

void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

// Saves the variables defaultPath() reads and puts them back when the test ends.
class EnvGuard {
public:
  EnvGuard() {
    for (const char* name : NAMES) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v != nullptr ? std::optional<std::string>(v) : std::nullopt);
    }
  }
  ~EnvGuard() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name, value->c_str(), 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

private:
  static constexpr const char* NAMES[] = {"KITH_HOME", "XDG_DATA_HOME", "HOME"};
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

TEST_CASE("create() makes a private home with a store folder", "[cli]") {
  TempDir dir;
  Home home(dir / "nested/parents/home");
  CHECK_FALSE(home.hasIdentity());
  home.create();
  REQUIRE(isDir(home.path()));
  REQUIRE(isDir(home.storeDir()));
  CHECK(modeOf(home.path()) == 0700);
  CHECK(modeOf(home.storeDir()) == 0700);
  CHECK(home.storeDir() == home.path() + "/store");

  // Without an identity yet, create() again is harmless (an interrupted init can be re-run).
  home.create();
  CHECK(isDir(home.storeDir()));

  // The store is created once in store/ (by init or restore); before that, opening it is damage,
  // never silently a new empty store.
  CHECK(std::string(kindName(errorOf([&] { home.openStore(); }).kind())) == "CORRUPT");
  { auto created = home.createStore(); }
  CHECK(std::filesystem::exists(home.storeDir() + "/data.mdb"));
  {
    auto store = home.openStore();
    CHECK(store->journals().empty());
  }

  SECTION("an existing folder with loose permissions is made private") {
    Home loose(dir / "loose");
    REQUIRE(::mkdir(loose.path().c_str(), 0755) == 0);
    REQUIRE(::chmod(loose.path().c_str(), 0755) == 0);
    loose.create();
    CHECK(modeOf(loose.path()) == 0700);
  }
}

TEST_CASE("the key file is written with mode 0600 and an identity is never overwritten by create()", "[cli]") {
  TempDir dir;
  Home home(dir / "home");
  home.create();
  Bytes first = {1, 2, 3, 4, 5};
  home.writeKeyFile(first);
  CHECK(home.hasIdentity());
  CHECK(modeOf(home.keyFilePath()) == 0600);
  CHECK(home.readKeyFile() == first);
  CHECK_FALSE(std::filesystem::exists(home.keyFilePath() + ".tmp"));

  // Rewriting (a passphrase change) replaces it whole, still 0600.
  Bytes second(300, 0xab);
  home.writeKeyFile(second);
  CHECK(home.readKeyFile() == second);
  CHECK(modeOf(home.keyFilePath()) == 0600);

  Error err = errorOf([&] { home.create(); });
  CHECK(std::string(kindName(err.kind())) == "CONFLICT");
  CHECK_FALSE(err.hint().empty());
  CHECK(home.readKeyFile() == second);

  SECTION("a key file too large to be one") {
    writeText(home.keyFilePath(), std::string(crypto::KEY_FILE_BYTES_MAX + 1, 'k'));
    Error big = errorOf([&] { home.readKeyFile(); });
    CHECK(std::string(kindName(big.kind())) == "CORRUPT");
  }
}

TEST_CASE("a home without an identity says to run kith init", "[cli]") {
  TempDir dir;
  SECTION("no home at all") {
    Home missing(dir / "missing");
    Error err = errorOf([&] { missing.readKeyFile(); });
    CHECK(std::string(kindName(err.kind())) == "NOT_FOUND");
    CHECK_THAT(err.hint(), Catch::Matchers::Contains("kith init"));
    CHECK(std::string(kindName(errorOf([&] { missing.openStore(); }).kind())) == "NOT_FOUND");
    CHECK(std::string(kindName(errorOf([&] { missing.writeConfig({{"a", 1}}); }).kind())) == "NOT_FOUND");
    CHECK_FALSE(std::filesystem::exists(missing.path()));  // nothing was created on the way
  }
  SECTION("a home with no key file") {
    Home home(dir / "home");
    home.create();
    Error err = errorOf([&] { home.readKeyFile(); });
    CHECK(std::string(kindName(err.kind())) == "NOT_FOUND");
    CHECK_THAT(err.hint(), Catch::Matchers::Contains("kith init"));
  }
}

TEST_CASE("the configuration is a JSON object written privately and atomically", "[cli]") {
  TempDir dir;
  Home home(dir / "home");
  home.create();
  CHECK(home.readConfig() == nlohmann::json::object());

  nlohmann::json config = {{"listen", "127.0.0.1:7070"}, {"peers", {{{"key", "ab12"}, {"address", "10.0.0.2:7070"}}}}};
  home.writeConfig(config);
  CHECK(home.readConfig() == config);
  CHECK(modeOf(home.configPath()) == 0600);
  CHECK_FALSE(std::filesystem::exists(home.configPath() + ".tmp"));

  for (const std::string& bad : {std::string("{not json"), std::string("[1, 2, 3]"), std::string("\"text\""),
                                 std::string(""), std::string("{\"a\": 1} trailing")}) {
    INFO("config: " << bad);
    writeText(home.configPath(), bad);
    Error err = errorOf([&] { home.readConfig(); });
    CHECK(std::string(kindName(err.kind())) == "CORRUPT");
    CHECK_THAT(std::string(err.what()), Catch::Matchers::Contains("config.json"));
    CHECK_FALSE(err.hint().empty());
  }
  writeText(home.configPath(), "{\"pad\": \"" + std::string((1 << 20) + 1, 'p') + "\"}");
  CHECK(std::string(kindName(errorOf([&] { home.readConfig(); }).kind())) == "CORRUPT");
}

TEST_CASE("writeFileAtomic replaces a file whole with the mode given", "[cli]") {
  TempDir dir;
  std::string path = dir / "file";
  writeFileAtomic(path, asBytes("first version, longer than the second"), 0644);
  CHECK(modeOf(path) == 0644);  // fchmod: whatever the umask
  writeFileAtomic(path, asBytes("second"), 0600);
  CHECK(test::readFile(path) == "second");
  CHECK(modeOf(path) == 0600);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  Error err = errorOf([&] { writeFileAtomic(dir / "no/such/folder/file", asBytes("x"), 0600); });
  CHECK(std::string(kindName(err.kind())) == "IO");
}

TEST_CASE("defaultPath honours KITH_HOME then XDG_DATA_HOME then HOME", "[cli]") {
  EnvGuard guard;
  ::setenv("KITH_HOME", "/srv/kith-home", 1);
  ::setenv("XDG_DATA_HOME", "/data/xdg", 1);
  ::setenv("HOME", "/home/someone", 1);
  CHECK(Home::defaultPath() == "/srv/kith-home");

  ::unsetenv("KITH_HOME");
  CHECK(Home::defaultPath() == "/data/xdg/kith");
  ::setenv("KITH_HOME", "", 1);  // set but empty counts as unset
  CHECK(Home::defaultPath() == "/data/xdg/kith");

  ::unsetenv("XDG_DATA_HOME");
  CHECK(Home::defaultPath() == "/home/someone/.local/share/kith");
  ::setenv("XDG_DATA_HOME", "", 1);
  CHECK(Home::defaultPath() == "/home/someone/.local/share/kith");

  ::unsetenv("HOME");
  Error err = errorOf([] { Home::defaultPath(); });
  CHECK(std::string(kindName(err.kind())) == "USAGE");
  CHECK_THAT(err.hint(), Catch::Matchers::Contains("--home"));
}

}  // namespace

TEST_CASE("buildHomeAtomically leaves either a whole home or nothing", "[cli]") {
  TempDir dir;
  std::string path = dir / "home";

  SECTION("a failure part way leaves no home and no staging folder, and the next attempt works") {
    Error err = errorOf([&] {
      buildHomeAtomically(path, [](const Home& staging) {
        staging.writeKeyFile(asBytes(std::string("half a home")));
        throw Error(ErrorKind::IO, "the disk is full");
      });
    });
    CHECK(std::string(err.what()) == "the disk is full");
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK(std::filesystem::is_empty(dir.path()));  // no staging folder left beside it
    buildHomeAtomically(path, [](const Home& staging) {
      staging.writeKeyFile(asBytes(std::string("key")));
      staging.createStore();
    });
    Home home(path);
    CHECK(home.readKeyFile() == Bytes{'k', 'e', 'y'});
    CHECK(home.openStore()->journals().empty());
    CHECK(modeOf(path) == 0700);
  }
  SECTION("an empty folder is filled, a home or a non-empty folder is refused") {
    REQUIRE(::mkdir(path.c_str(), 0755) == 0);
    buildHomeAtomically(path, [](const Home& staging) { staging.writeKeyFile(asBytes(std::string("key"))); });
    CHECK(Home(path).hasIdentity());
    Error again = errorOf([&] { buildHomeAtomically(path, [](const Home&) {}); });
    CHECK(std::string(kindName(again.kind())) == "CONFLICT");

    std::string other = dir / "other";
    REQUIRE(::mkdir(other.c_str(), 0700) == 0);
    writeText(other + "/notes.txt", "mine");
    Error full = errorOf([&] { buildHomeAtomically(other, [](const Home&) {}); });
    CHECK(std::string(kindName(full.kind())) == "CONFLICT");
    CHECK(kith::test::readFile(other + "/notes.txt") == "mine");
  }
}

TEST_CASE("small files are checked for type and size before they are read", "[cli]") {
  TempDir dir;
  CHECK_FALSE(readSmallFile("the key file", dir / "absent", 100, "hint").has_value());

  REQUIRE(::mkdir((dir / "folder").c_str(), 0700) == 0);
  Error folder = errorOf([&] { readSmallFile("the key file", dir / "folder", 100, "restore it"); });
  CHECK(std::string(kindName(folder.kind())) == "CORRUPT");
  CHECK(std::string(folder.what()) == "the key file " + (dir / "folder") + " is a folder, not a file");
  CHECK(folder.hint() == "restore it");

  writeText(dir / "big", std::string(101, 'x'));
  Error big = errorOf([&] { readSmallFile("the configuration", dir / "big", 100, "fix it"); });
  CHECK(std::string(big.what()) == "the configuration " + (dir / "big") + " is too large (101 bytes, the most is 100)");

  writeText(dir / "fits", std::string(100, 'x'));
  CHECK(readSmallFile("the configuration", dir / "fits", 100, "fix it")->size() == 100);

  Error device = errorOf([&] { readSmallFile("the key file", "/dev/null", 100, "restore it"); });
  CHECK(std::string(device.what()) == "the key file /dev/null is not a regular file");
}
