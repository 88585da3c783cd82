#include "cli/home.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "cli/limits.h"
#include "crypto/key-file.h"

namespace kith::cli {
namespace {

[[noreturn]] void ioError(const std::string& what, const std::string& path) {
  throw Error(ErrorKind::IO, what + " " + path + ": " + std::strerror(errno));
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

void makeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) ioError("cannot create the folder", path);
}

}  // namespace

std::string Home::defaultPath() {
  if (const char* home = std::getenv("KITH_HOME"); home != nullptr && *home != '\0') return home;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/kith";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.local/share/kith";
  }
  throw Error(ErrorKind::USAGE, "no home folder is set", "pass --home DIR or set KITH_HOME");
}

bool Home::hasIdentity() const { return exists(keyFilePath()); }

bool Home::isRelayHome() const { return exists(relayConfigPath()); }

void Home::requireHousehold() const {
  if (isRelayHome()) {
    throw Error(ErrorKind::USAGE, path_ + " is a relay's home, not a household's",
                "use 'kith relay serve', 'kith relay status' or 'kith relay token' with it, or pass another --home");
  }
}

void Home::requireExists() const {
  if (!exists(path_)) {
    throw Error(ErrorKind::NOT_FOUND, "there is no kith home at " + path_,
                "run 'kith init' to create one, or pass --home DIR");
  }
}

void Home::create() const {
  if (hasIdentity()) {
    throw Error(ErrorKind::CONFLICT, "this home already has an identity (" + keyFilePath() + ")",
                "use it as it is, or choose another folder with --home DIR");
  }
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  if (ec) throw Error(ErrorKind::IO, "cannot create the home " + path_ + ": " + ec.message());
  ::chmod(path_.c_str(), 0700);
  makeDir(storeDir());
}

void buildHomeAtomically(const std::string& path, const std::function<void(const Home& staging)>& fill) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path target = fs::absolute(fs::path(path), ec).lexically_normal();
  if (ec) throw Error(ErrorKind::IO, "cannot use the home " + path + ": " + ec.message());
  if (target.has_filename() == false) target = target.parent_path();  // "dir/" names "dir"
  Home existing(target.string());
  if (existing.hasIdentity()) {
    throw Error(ErrorKind::CONFLICT, "this home already has an identity (" + existing.keyFilePath() + ")",
                "use it as it is, or choose another folder with --home DIR");
  }
  if (fs::exists(target, ec) && !(fs::is_directory(target, ec) && fs::is_empty(target, ec))) {
    throw Error(ErrorKind::CONFLICT, target.string() + " exists and is not an empty folder",
                "choose a new or empty folder with --home DIR, or move this one aside");
  }
  fs::create_directories(target.parent_path(), ec);
  if (ec) throw Error(ErrorKind::IO, "cannot create " + target.parent_path().string() + ": " + ec.message());
  // The staging folder sits beside the home, on the same file system, so the rename is atomic.
  std::string pattern = (target.parent_path() / ("." + target.filename().string() + ".new-XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) ioError("cannot create a folder beside", target.string());
  std::string staging(buf.data());
  try {
    ::chmod(staging.c_str(), 0700);
    makeDir(staging + "/store");
    fill(Home(staging));
    // Everything inside is on disk before the rename makes it visible.
    for (const auto& dir : {staging + "/store", staging}) {
      for (const auto& item : fs::directory_iterator(dir)) {
        if (!item.is_regular_file()) continue;
        int fd = ::open(item.path().c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::fsync(fd) != 0) {
          if (fd >= 0) ::close(fd);
          ioError("cannot write", item.path().string());
        }
        ::close(fd);
      }
      int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0 || ::fsync(dfd) != 0) {
        if (dfd >= 0) ::close(dfd);
        ioError("cannot write", dir);
      }
      ::close(dfd);
    }
    // rename(2) replaces an empty folder and refuses a non-empty one (someone raced us).
    if (::rename(staging.c_str(), target.c_str()) != 0) {
      if (errno == ENOTEMPTY || errno == EEXIST) {
        throw Error(ErrorKind::CONFLICT, target.string() + " was filled while the home was being made",
                    "choose a new or empty folder with --home DIR");
      }
      ioError("cannot move the new home into", target.string());
    }
    int pfd = ::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd >= 0) {
      ::fsync(pfd);
      ::close(pfd);
    }
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
}

void Home::writeKeyFile(ByteView bytes) const { writeFileAtomic(keyFilePath(), bytes, 0600); }

Bytes Home::readKeyFile() const {
  requireExists();
  requireHousehold();
  auto file = readSmallFile("the key file", keyFilePath(), crypto::KEY_FILE_BYTES_MAX, HINT_RESTORE_KEY);
  if (!file) {
    throw Error(ErrorKind::NOT_FOUND, "the home " + path_ + " has no identity yet", "run 'kith init' first");
  }
  return std::move(*file);
}

std::unique_ptr<store::Store> Home::openStore(store::StoreOptions options) const {
  requireExists();
  requireHousehold();
  options.create = false;
  return store::Store::open(storeDir(), options);
}

std::unique_ptr<store::Store> Home::createStore(store::StoreOptions options) const {
  requireExists();
  makeDir(storeDir());
  options.create = true;
  return store::Store::open(storeDir(), options);
}

nlohmann::json Home::readConfig() const {
  requireHousehold();
  auto file = readSmallFile("the configuration", configPath(), CONFIG_BYTES_MAX, "fix or remove the file");
  if (!file) return nlohmann::json::object();
  auto config = nlohmann::json::parse(file->begin(), file->end(), nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    throw Error(ErrorKind::CORRUPT, configPath() + " is not a JSON object", "fix or remove the file");
  }
  return config;
}

void Home::writeConfig(const nlohmann::json& config) const {
  requireExists();
  std::string text = config.dump(2) + "\n";
  writeFileAtomic(configPath(), asBytes(text), 0600);
}

}  // namespace kith::cli
