#include "cli/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "crypto/hash.h"

namespace kith::cli {
namespace {

static_assert(BACKUP_KEY_FILE_BYTES_MAX == crypto::KEY_FILE_BYTES_MAX);
static_assert(BACKUP_CHECKSUM_BYTES == crypto::HASH_BYTES);
static_assert(BACKUP_HEADER_BYTES == BACKUP_MAGIC_BYTES + 4 + 4);  // magic, version, section count
static_assert(BACKUP_SECTION_HEADER_BYTES == 4 + 4 + 8);           // type, flags, length
// The smallest well-formed backup: a one-byte key file and a one-byte store.
constexpr uint64_t BACKUP_FILE_BYTES_MIN =
    BACKUP_HEADER_BYTES + 2 * BACKUP_SECTION_HEADER_BYTES + 2 + BACKUP_CHECKSUM_BYTES;

constexpr const char* HINT_NOT_BACKUP = "give the file that 'kith backup FILE' wrote";
constexpr const char* HINT_DAMAGED =
    "this copy cannot be restored: use another copy of the backup, or make a new one with 'kith backup FILE'";

[[noreturn]] void ioError(const std::string& what, const std::string& path) {
  int err = errno;
  std::string hint = err == ENOSPC                   ? "free some disk space and try again"
                     : err == EACCES || err == EROFS ? "check the folder's permissions"
                     : err == ENOENT                 ? "check that the folder exists"
                                                     : "";
  throw Error(ErrorKind::IO, what + " " + path + ": " + std::strerror(err), hint);
}

[[noreturn]] void damaged(const std::string& path, const std::string& why) {
  throw Error(ErrorKind::CORRUPT, path + " is damaged: " + why, HINT_DAMAGED);
}

// An owned file descriptor.
class Fd {
public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting a failed close (a write that did not reach the disk) as Error(IO).
  void close(const std::string& path) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) ioError("cannot write", path);
  }

private:
  int fd_;
};

// The checksum of specs/backup.md: plain BLAKE2b-256 (as `b2sum -l 256` computes it).
using Checksum = crypto::StreamHash;

void writeAll(int fd, ByteView bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ioError("cannot write", path);
    }
    done += static_cast<size_t>(n);
  }
}

void pwriteAll(int fd, ByteView bytes, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ioError("cannot write", path);
    }
    done += static_cast<size_t>(n);
  }
}

// Reads exactly out.size() bytes at `offset`; a file that ends first is damaged (truncated).
void preadAll(int fd, std::span<uint8_t> out, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ioError("cannot read", path);
    }
    if (n == 0) damaged(path, "it ends early (truncated while being read?)");
    done += static_cast<size_t>(n);
  }
}

// Calls fn(chunk) for the bytes [offset, offset + length) of `fd`, BACKUP_CHUNK_BYTES at a time.
template <typename Fn>
void streamRange(int fd, uint64_t offset, uint64_t length, const std::string& path, Fn&& fn) {
  std::vector<uint8_t> buffer(static_cast<size_t>(std::min<uint64_t>(length, BACKUP_CHUNK_BYTES)));
  while (length > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(length, buffer.size()));
    std::span<uint8_t> chunk(buffer.data(), n);
    preadAll(fd, chunk, offset, path);
    fn(ByteView(chunk));
    offset += n;
    length -= n;
  }
}

void putU64At(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

Bytes fileHeader(uint32_t sections) {
  Bytes out(BACKUP_MAGIC, BACKUP_MAGIC + BACKUP_MAGIC_BYTES);
  putU32(out, BACKUP_VERSION);
  putU32(out, sections);
  KITH_ASSERT(out.size() == BACKUP_HEADER_BYTES);
  return out;
}

Bytes sectionHeader(BackupSection type, uint64_t length) {
  Bytes out;
  putU32(out, static_cast<uint32_t>(type));
  putU32(out, 0);  // flags: none are defined
  putU64(out, length);
  KITH_ASSERT(out.size() == BACKUP_SECTION_HEADER_BYTES);
  return out;
}

const char* sectionName(BackupSection type) {
  switch (type) {
    case BackupSection::KEY_FILE:
      return "key file";
    case BackupSection::CONFIG:
      return "config.json";
    case BackupSection::STORE:
      return "store";
  }
  return "unknown";
}

uint64_t sectionBytesMax(BackupSection type) {
  switch (type) {
    case BackupSection::KEY_FILE:
      return BACKUP_KEY_FILE_BYTES_MAX;
    case BackupSection::CONFIG:
      return BACKUP_CONFIG_BYTES_MAX;
    case BackupSection::STORE:
      return BACKUP_STORE_BYTES_MAX;
  }
  return 0;
}

uint64_t fileSize(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) ioError("cannot read", path);
  return static_cast<uint64_t>(st.st_size);
}

void fsyncFolderOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// A backup file whose structure and checksum have been checked, kept open so that what is
// restored is what was checked.
struct CheckedBackup {
  std::unique_ptr<Fd> fd;
  uint64_t fileBytes = 0;
  uint64_t storeOffset = 0;  // of the store section's contents
  uint64_t storeBytes = 0;
  Key32 checksum{};
  Bytes keyFile;
  std::optional<Bytes> config;
};

// Checks, in this order and before allocating anything sized by the file: its type and size,
// the magic and version, each section header (type, order, flags, length against its limit and
// against the bytes left), that the sections end where the checksum starts, and the checksum.
CheckedBackup checkBackup(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (raw < 0) {
    if (errno == ENOENT) throw Error(ErrorKind::NOT_FOUND, "there is no file " + path, HINT_NOT_BACKUP);
    ioError("cannot read", path);
  }
  CheckedBackup b;
  b.fd = std::make_unique<Fd>(raw);
  int fd = b.fd->get();
  struct stat st;
  if (::fstat(fd, &st) != 0) ioError("cannot read", path);
  if (S_ISDIR(st.st_mode)) throw Error(ErrorKind::INPUT, path + " is a folder, not a kith backup", HINT_NOT_BACKUP);
  if (!S_ISREG(st.st_mode)) throw Error(ErrorKind::INPUT, path + " is not a regular file", HINT_NOT_BACKUP);
  b.fileBytes = static_cast<uint64_t>(st.st_size);
  if (b.fileBytes > BACKUP_FILE_BYTES_MAX) {
    throw Error(ErrorKind::CORRUPT,
                path + " is " + std::to_string(b.fileBytes) + " bytes, larger than any kith backup (at most " +
                    std::to_string(BACKUP_FILE_BYTES_MAX) + ")",
                HINT_NOT_BACKUP);
  }

  // The magic and version before any length: a foreign file is called foreign, not damaged.
  uint8_t header[BACKUP_HEADER_BYTES];
  if (b.fileBytes < BACKUP_HEADER_BYTES) {
    throw Error(ErrorKind::CORRUPT,
                path + " is too short to be a kith backup (" + std::to_string(b.fileBytes) + " bytes)",
                HINT_NOT_BACKUP);
  }
  preadAll(fd, header, 0, path);
  if (std::memcmp(header, BACKUP_MAGIC, BACKUP_MAGIC_BYTES) != 0) {
    throw Error(ErrorKind::CORRUPT, path + " is not a kith backup", HINT_NOT_BACKUP);
  }
  uint32_t version = getU32(header + BACKUP_MAGIC_BYTES);
  if (version != BACKUP_VERSION) {
    throw Error(ErrorKind::CORRUPT,
                path + " is a kith backup of version " + std::to_string(version) + "; this kith reads version " +
                    std::to_string(BACKUP_VERSION),
                "restore it with the kith that made it, or a newer one");
  }
  if (b.fileBytes < BACKUP_FILE_BYTES_MIN) damaged(path, "it is too short to hold a home (truncated?)");
  uint32_t sections = getU32(header + BACKUP_MAGIC_BYTES + 4);
  if (sections < 2 || sections > BACKUP_SECTIONS_MAX) {
    damaged(path, "its header counts " + std::to_string(sections) + " sections");
  }

  const uint64_t sectionsEnd = b.fileBytes - BACKUP_CHECKSUM_BYTES;
  uint64_t offset = BACKUP_HEADER_BYTES;
  uint32_t lastType = 0;
  bool hasKey = false;
  std::optional<std::pair<uint64_t, uint64_t>> configAt;
  std::pair<uint64_t, uint64_t> keyAt{};
  for (uint32_t i = 0; i < sections; ++i) {
    if (sectionsEnd - offset < BACKUP_SECTION_HEADER_BYTES) damaged(path, "it ends inside its sections (truncated?)");
    uint8_t sh[BACKUP_SECTION_HEADER_BYTES];
    preadAll(fd, sh, offset, path);
    uint32_t typeCode = getU32(sh);
    uint32_t flags = getU32(sh + 4);
    uint64_t length = getU64(sh + 8);
    if (typeCode < static_cast<uint32_t>(BackupSection::KEY_FILE) ||
        typeCode > static_cast<uint32_t>(BackupSection::STORE)) {
      damaged(path, "section " + std::to_string(i + 1) + " has the unknown type " + std::to_string(typeCode));
    }
    auto type = static_cast<BackupSection>(typeCode);
    if (typeCode <= lastType) damaged(path, std::string("its ") + sectionName(type) + " section is out of order");
    if (flags != 0) damaged(path, std::string("its ") + sectionName(type) + " section has unknown flags");
    if (length == 0 || length > sectionBytesMax(type)) {
      damaged(path, std::string("its ") + sectionName(type) + " section claims " + std::to_string(length) +
                        " bytes (at most " + std::to_string(sectionBytesMax(type)) + ")");
    }
    offset += BACKUP_SECTION_HEADER_BYTES;
    if (length > sectionsEnd - offset) {
      damaged(path, std::string("it ends before its ") + sectionName(type) + " section does (truncated?)");
    }
    switch (type) {
      case BackupSection::KEY_FILE:
        keyAt = {offset, length};
        hasKey = true;
        break;
      case BackupSection::CONFIG:
        configAt = {{offset, length}};
        break;
      case BackupSection::STORE:
        b.storeOffset = offset;
        b.storeBytes = length;
        break;
    }
    offset += length;
    lastType = typeCode;
  }
  if (!hasKey) damaged(path, "it holds no key file");
  if (b.storeBytes == 0) damaged(path, "it holds no store");
  if (offset != sectionsEnd) damaged(path, "its sections do not end where its checksum begins");

  Checksum sum;
  streamRange(fd, 0, sectionsEnd, path, [&](ByteView chunk) { sum.update(chunk); });
  preadAll(fd, b.checksum, sectionsEnd, path);
  if (sum.final() != b.checksum) {  // a checksum, not a secret: no constant-time compare needed
    damaged(path, "its checksum does not match its contents");
  }

  // The lengths are within their limits (a few KiB): now they may be read.
  b.keyFile.resize(static_cast<size_t>(keyAt.second));
  preadAll(fd, b.keyFile, keyAt.first, path);
  if (configAt) {
    b.config.emplace(static_cast<size_t>(configAt->second));
    preadAll(fd, *b.config, configAt->first, path);
  }
  return b;
}

// A temporary file beside `path`, removed on destruction unless it was renamed into place.
class TempFile {
public:
  explicit TempFile(const std::string& path) {
    std::filesystem::path target(path);
    std::string dir = target.parent_path().string();
    std::string pattern = (dir.empty() ? "" : dir + "/") + "." + target.filename().string() + ".tmp-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    int fd = ::mkostemp(buf.data(), O_CLOEXEC);
    if (fd < 0) ioError("cannot create a file beside", path);
    path_ = buf.data();
    fd_ = std::make_unique<Fd>(fd);
  }
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int fd() const { return fd_->get(); }
  const std::string& path() const { return path_; }
  void close() { fd_->close(path_); }
  // Gives the file its final name; never replaces an existing file.
  void moveTo(const std::string& target) {
    if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST) existsAlready(target);
      if (errno != EINVAL && errno != ENOSYS) ioError("cannot create", target);
      // A file system without RENAME_NOREPLACE: link(2) refuses an existing name too.
      if (::link(path_.c_str(), target.c_str()) != 0) {
        if (errno == EEXIST) existsAlready(target);
        ioError("cannot create", target);
      }
      ::unlink(path_.c_str());
    }
    path_.clear();
    fsyncFolderOf(target);
  }

  [[noreturn]] static void existsAlready(const std::string& target) {
    throw Error(ErrorKind::CONFLICT, target + " exists already",
                "choose another name for the backup, or remove the old file first");
  }

private:
  std::string path_;
  std::unique_ptr<Fd> fd_;
};

}  // namespace

BackupSummary writeBackup(const Home& home, const store::Store& store, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      throw Error(ErrorKind::CONFLICT, path + " is a folder",
                  "give the name of a new file for the backup, e.g. " + path + "/kith-backup.kith");
    }
    TempFile::existsAlready(path);
  }

  BackupSummary summary;
  summary.file = path;
  summary.home = home.path();
  Bytes keyFile = home.readKeyFile();
  summary.key = crypto::readKeyFileInfo(keyFile);
  KITH_ASSERT(!keyFile.empty());
  KITH_ASSERT(keyFile.size() <= BACKUP_KEY_FILE_BYTES_MAX);
  std::optional<Bytes> config = readSmallFile(home.configPath(), BACKUP_CONFIG_BYTES_MAX, "fix or remove the file");
  if (config && config->empty()) config.reset();  // an empty file holds nothing worth restoring
  summary.hasConfig = config.has_value();
  for (const auto& j : store.journals()) {
    ++summary.journals;
    summary.entries += j.entryCount;
  }

  TempFile tmp(path);
  int fd = tmp.fd();
  Bytes head = fileHeader(config ? 3 : 2);
  Bytes keyHeader = sectionHeader(BackupSection::KEY_FILE, keyFile.size());
  head.insert(head.end(), keyHeader.begin(), keyHeader.end());
  head.insert(head.end(), keyFile.begin(), keyFile.end());
  if (config) {
    Bytes configHeader = sectionHeader(BackupSection::CONFIG, config->size());
    head.insert(head.end(), configHeader.begin(), configHeader.end());
    head.insert(head.end(), config->begin(), config->end());
  }
  // The store's length is known once LMDB has written it: patched below.
  const uint64_t storeHeaderAt = head.size();
  Bytes storeHeader = sectionHeader(BackupSection::STORE, 0);
  head.insert(head.end(), storeHeader.begin(), storeHeader.end());
  writeAll(fd, head, tmp.path());
  const uint64_t storeOffset = head.size();

  // LMDB writes the copy at the descriptor's offset, right after the store's section header.
  store.copyCompactTo(fd);
  const uint64_t sectionsEnd = fileSize(fd, tmp.path());
  KITH_ASSERT(sectionsEnd >= storeOffset);
  summary.storeBytes = sectionsEnd - storeOffset;
  if (summary.storeBytes == 0 || summary.storeBytes > BACKUP_STORE_BYTES_MAX) {
    throw Error(ErrorKind::IO, "the copy of the store is " + std::to_string(summary.storeBytes) + " bytes",
                "run 'kith check' and try again");
  }
  uint8_t length[8];
  putU64At(length, summary.storeBytes);
  pwriteAll(fd, length, storeHeaderAt + 8, tmp.path());

  Checksum sum;
  streamRange(fd, 0, sectionsEnd, tmp.path(), [&](ByteView chunk) { sum.update(chunk); });
  Key32 checksum = sum.final();
  pwriteAll(fd, checksum, sectionsEnd, tmp.path());
  if (::fsync(fd) != 0) ioError("cannot write", tmp.path());
  tmp.close();
  summary.fileBytes = sectionsEnd + BACKUP_CHECKSUM_BYTES;

  // Read back as restore will read it before it gets its name: a backup that would be refused
  // is never left behind as if it were good.
  CheckedBackup check = checkBackup(tmp.path());
  KITH_ASSERT(check.fileBytes == summary.fileBytes);
  KITH_ASSERT(check.keyFile == keyFile);
  tmp.moveTo(path);
  return summary;
}

BackupSummary restoreBackup(const std::string& path, const std::string& homePath) {
  Home target(homePath);
  if (target.hasIdentity()) {
    throw Error(ErrorKind::CONFLICT, "the home " + homePath + " already has an identity",
                "restore into a new folder with --home DIR, or move the existing home aside first");
  }
  CheckedBackup b = checkBackup(path);
  BackupSummary summary;
  summary.file = path;
  summary.home = homePath;
  summary.fileBytes = b.fileBytes;
  summary.storeBytes = b.storeBytes;
  summary.hasConfig = b.config.has_value();
  try {
    summary.key = crypto::readKeyFileInfo(b.keyFile);
  } catch (const Error& e) { damaged(path, std::string("its key file is not usable (") + e.what() + ")"); }
  if (b.config) {
    auto config = nlohmann::json::parse(b.config->begin(), b.config->end(), nullptr, false);
    if (config.is_discarded() || !config.is_object()) damaged(path, "its config.json is not a JSON object");
  }

  buildHomeAtomically(homePath, [&](const Home& staging) {
    staging.writeKeyFile(b.keyFile);
    if (b.config) writeFileAtomic(staging.configPath(), *b.config, 0600);

    // The store, streamed; the checksum is computed again over what is copied, so that a file
    // changed since it was checked is refused rather than restored.
    std::string dataPath = staging.storeDir() + "/data.mdb";
    Fd out(::open(dataPath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (out.get() < 0) ioError("cannot create", dataPath);
    int in = b.fd->get();
    Checksum sum;
    streamRange(in, 0, b.storeOffset, path, [&](ByteView chunk) { sum.update(chunk); });
    streamRange(in, b.storeOffset, b.storeBytes, path, [&](ByteView chunk) {
      sum.update(chunk);
      writeAll(out.get(), chunk, dataPath);
    });
    bool same = sum.final() == b.checksum;
    if (!same || fileSize(in, path) != b.fileBytes) { damaged(path, "it changed while it was being restored"); }
    if (::fsync(out.get()) != 0) ioError("cannot write", dataPath);
    out.close(dataPath);

    // Open the restored store once: a home that is renamed into place opens.
    std::unique_ptr<store::Store> restored;
    try {
      restored = staging.openStore();
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::CORRUPT) throw;
      damaged(path, std::string("its store does not open (") + e.what() + ")");
    }
    for (const auto& j : restored->journals()) {
      ++summary.journals;
      summary.entries += j.entryCount;
    }
  });
  return summary;
}

}  // namespace kith::cli
