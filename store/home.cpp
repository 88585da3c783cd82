#include "store/home.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/error.h"
#include "crypto/key-file.h"

namespace kith::store {
namespace {

constexpr size_t CONFIG_BYTES_MAX = 1 << 20;

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

void writeFileAtomic(const std::string& path, ByteView bytes, unsigned mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) ioError("cannot write", tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      ioError("cannot write", tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    ::close(fd);
    ioError("cannot write", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) ioError("cannot replace", path);
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void Home::writeKeyFile(ByteView bytes) const { writeFileAtomic(keyFilePath(), bytes, 0600); }

Bytes Home::readKeyFile() const {
  requireExists();
  std::ifstream in(keyFilePath(), std::ios::binary);
  if (!in) {
    throw Error(ErrorKind::NOT_FOUND, "the home " + path_ + " has no identity yet",
                "run 'kith init' first");
  }
  Bytes out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (out.size() > crypto::KEY_FILE_BYTES_MAX) {
    throw Error(ErrorKind::CORRUPT, "the key file " + keyFilePath() + " is too large to be a kith key file",
                "restore identity.key from a backup");
  }
  return out;
}

std::unique_ptr<Store> Home::openStore(StoreOptions options) const {
  requireExists();
  makeDir(storeDir());
  return Store::open(storeDir(), options);
}

nlohmann::json Home::readConfig() const {
  std::ifstream in(configPath(), std::ios::binary);
  if (!in) return nlohmann::json::object();
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > CONFIG_BYTES_MAX) {
    throw Error(ErrorKind::CORRUPT, configPath() + " is larger than 1 MiB", "fix or remove the file");
  }
  auto config = nlohmann::json::parse(text, nullptr, false);
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

}  // namespace kith::store
