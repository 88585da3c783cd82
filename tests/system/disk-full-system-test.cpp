// A full disk, for real: a small tmpfs mounted for the test (root only; CI runs as root) with a
// filler file leaving a chosen number of bytes free. `kith init` leaves a whole home or nothing
// at every size, and the next `init` works once there is room; `post` on a full disk says so in
// one line and loses nothing committed; no command ever dies of a signal (LMDB's lock file used
// to fault with SIGBUS when its pages could not be allocated).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/kith-process.h"

namespace {

using kith::test::describe;
using kith::test::RunResult;
using kith::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* TMPFS_SIZE = "4m";
constexpr int COMMAND_TIMEOUT_MS = 60000;

RunResult runKith(const std::string& home, const std::vector<std::string>& args) {
  return kith::test::runKith(home, args, kith::test::kithOptions(COMMAND_TIMEOUT_MS));
}

// Ended normally, and on failure said so in exactly one "kith: error:" line.
void requireComposedInOneLine(const RunResult& r) {
  kith::test::requireComposed(r);
  INFO(describe(r));
  if (r.exitCode != 0) REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

// A tmpfs of TMPFS_SIZE at a temporary folder, unmounted at the end.
class SmallDisk {
public:
  SmallDisk() : path_(dir_ / "disk") {
    fs::create_directory(path_);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, (std::string("size=") + TMPFS_SIZE).c_str()) == 0;
    error_ = mounted_ ? "" : std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

  uint64_t freeBytes() const {
    struct statvfs st;
    REQUIRE(::statvfs(path_.c_str(), &st) == 0);
    return uint64_t{st.f_bavail} * st.f_frsize;
  }
  // Grows (or shrinks) the filler file so that `bytes` are left free.
  void leaveFree(uint64_t bytes) {
    std::string filler = path_ + "/filler";
    ::unlink(filler.c_str());
    uint64_t total = freeBytes();
    if (total <= bytes) return;
    int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::fallocate(fd, 0, 0, static_cast<off_t>(total - bytes)) == 0);
    ::close(fd);
  }
  void removeFiller() { ::unlink((path_ + "/filler").c_str()); }

private:
  TempDir dir_;
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

bool leftovers(const std::string& dir) {
  for (const auto& item : fs::directory_iterator(dir)) {
    std::string name = item.path().filename().string();
    if (name != "filler") return true;
  }
  return false;
}

}  // namespace

TEST_CASE("init on a nearly full disk leaves a whole home or nothing, at every size", "[system][disk]") {
  SmallDisk disk;
  if (!disk.mounted()) {
    WARN("cannot mount a tmpfs here (" << disk.error() << "): this test needs root, as CI has");
    return;
  }
  std::string home = disk.path() + "/home";
  size_t failures = 0, successes = 0;
  for (uint64_t freeKiB : {0, 4, 8, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256, 512}) {
    INFO("free KiB " << freeKiB);
    disk.leaveFree(freeKiB * 1024);
    RunResult init = runKith(home, {"init", "--no-passphrase"});
    requireComposedInOneLine(init);
    if (init.exitCode != 0) {
      ++failures;
      // Nothing half-made: no home, no staging folder beside it.
      CHECK_FALSE(leftovers(disk.path()));
      disk.removeFiller();
      RunResult again = runKith(home, {"init", "--no-passphrase"});
      INFO(describe(again));
      REQUIRE(again.exitCode == 0);
    } else {
      ++successes;
    }
    // Whichever way it went, the home is whole: every command works or says why in one line.
    disk.leaveFree(freeKiB * 1024);
    for (const std::vector<std::string>& args : {std::vector<std::string>{"status"},
                                                 {"journal", "create", "Mum's journey"},
                                                 {"post", "Home on Thursday"},
                                                 {"read"},
                                                 {"check"}}) {
      RunResult r = runKith(home, args);
      requireComposedInOneLine(r);
      // A failed write names the disk and says what to do, not only the errno LMDB saw.
      INFO(describe(r));
      if (r.err.find("Input/output") != std::string::npos || r.err.find("No space") != std::string::npos) {
        CHECK(r.err.find("the disk is full") != std::string::npos);
        CHECK(r.err.find("free some disk space") != std::string::npos);
      }
    }
    disk.removeFiller();
    RunResult status = runKith(home, {"status"});
    INFO(describe(status));
    CHECK(status.exitCode == 0);
    fs::remove_all(home);
  }
  // The sizes above cover both outcomes.
  CHECK(failures > 0);
  CHECK(successes > 0);
}

TEST_CASE("a post on a full disk fails in one line and loses nothing committed", "[system][disk]") {
  SmallDisk disk;
  if (!disk.mounted()) {
    WARN("cannot mount a tmpfs here (" << disk.error() << "): this test needs root, as CI has");
    return;
  }
  std::string home = disk.path() + "/home";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"init", "--no-passphrase"}, {"journal", "create", "Mum's journey"}}) {
    RunResult r = runKith(home, args);
    INFO(describe(r));
    REQUIRE(r.exitCode == 0);
  }
  std::vector<std::string> posted;
  for (int i = 0; i < 20; ++i) {
    RunResult r = runKith(home, {"--json", "post", "update " + std::to_string(i)});
    INFO(describe(r));
    REQUIRE(r.exitCode == 0);
    posted.push_back(json::parse(r.out).at("id").get<std::string>());
  }

  // Posts until the disk is full: each either lands or fails in one line.
  disk.leaveFree(0);
  size_t refused = 0;
  for (int i = 0; i < 20; ++i) {
    RunResult r = runKith(home, {"--json", "post", std::string(30000, 'x') + std::to_string(i)});
    requireComposedInOneLine(r);
    if (r.exitCode == 0) {
      posted.push_back(json::parse(r.out).at("id").get<std::string>());
    } else {
      ++refused;
      INFO(describe(r));
      CHECK(r.err.find("disk") != std::string::npos);
      CHECK(r.err.find("free some disk space") != std::string::npos);
    }
  }
  CHECK(refused > 0);

  // Still full: reading works and shows everything acknowledged.
  RunResult read = runKith(home, {"--json", "read"});
  INFO(describe(read));
  REQUIRE(read.exitCode == 0);
  std::set<std::string> shown;
  for (const auto& e : json::parse(read.out)) shown.insert(e.at("id").get<std::string>());
  for (const auto& id : posted) CHECK(shown.count(id) == 1);

  // With room again, the chain goes on.
  disk.removeFiller();
  RunResult after = runKith(home, {"post", "room again"});
  INFO(describe(after));
  CHECK(after.exitCode == 0);
  RunResult check = runKith(home, {"check"});
  INFO(describe(check));
  CHECK(check.exitCode == 0);
}
