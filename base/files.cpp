#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"

namespace kith {
namespace {

[[noreturn]] void ioError(const std::string& what, const std::string& path) {
  throw Error(ErrorKind::IO, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

std::optional<Bytes> readSmallFile(const std::string& what, const std::string& path, size_t bytesMax,
                                   const std::string& hint) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    if (errno == EACCES)
      throw Error(ErrorKind::IO, "cannot read " + path + ": permission denied", "check the file's permissions");
    ioError("cannot read", path);
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) ioError("cannot read", path);
  std::string named = what + " " + path;
  if (S_ISDIR(st.st_mode)) throw Error(ErrorKind::CORRUPT, named + " is a folder, not a file", hint);
  if (!S_ISREG(st.st_mode)) throw Error(ErrorKind::CORRUPT, named + " is not a regular file", hint);
  if (static_cast<uint64_t>(st.st_size) > bytesMax) {
    throw Error(ErrorKind::CORRUPT,
                named + " is too large (" + std::to_string(st.st_size) + " bytes, the most is " +
                    std::to_string(bytesMax) + ")",
                hint);
  }
  // Read at most one byte past the limit, in case the file grew since fstat.
  Bytes out(bytesMax + 1);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ioError("cannot read", path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > bytesMax) throw Error(ErrorKind::CORRUPT, named + " is too large", hint);
  out.resize(done);
  return out;
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

}  // namespace kith
