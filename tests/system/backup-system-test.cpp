// Whole-system tests of `kith backup` and `kith restore`: real `kith` processes, real LMDB stores
// in temporary homes, real `kith serve` nodes on loopback ports the OS chooses.
//
// Checked here: a backup taken while the owner's node serves holds the journal, its members (one
// by invite, one granted), a comment, a heart and an open invite; the restored home shows exactly
// what the original showed; the restored node, serving in its place, gives a friend every entry
// by `kith sync`. Every damaged or wrong file (a flipped byte anywhere, a truncated file, a
// folder, a device, a foreign file, an oversized one) is refused with one line and leaves nothing
// at the target; a home with an identity is never restored over; a backup never replaces a file.
//
// Readiness is explicit: the "listening on" log line, and polling `kith read --json` against a
// deadline. Nothing sleeps for a fixed time.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sodium.h>
#include <nlohmann/json.hpp>

#include "cli/backup.h"
#include "tests/support/kith-process.h"
#include "tests/support/seed.h"

namespace {

using kith::test::anyFileContains;
using kith::test::contains;
using kith::test::describe;
using kith::test::entryWithText;
using kith::test::eventually;
using kith::test::idsOf;
using kith::test::kithBinary;
using kith::test::kithOptions;
using kith::test::readFile;
using kith::test::requireNoCrash;
using kith::test::requireRefusal;
using kith::test::RunResult;
using kith::test::showsReactions;
using kith::test::TempDir;
using kith::test::writeFile;
using Home = kith::test::KithHome;
using Serve = kith::test::KithServe;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr int REPLICATION_TIMEOUT_MS = 15000;
constexpr const char* PASSPHRASE = "juniper kettle at dawn";

// What people see of a home, by the commands they would use: equal for a home and its restore.
json viewOf(const Home& home) {
  return {{"journals", home.kithJson({"journal", "list"})}, {"members", home.kithJson({"members"})},
          {"invites", home.kithJson({"invite", "list"})},   {"read", home.read()},
          {"peers", home.kithJson({"peers", "list"})},      {"id", home.kithJson({"id"})}};
}

// The entries in `dir`, by name: a refused restore must leave it as it was.
std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Where the store section's header is in a backup, and the length it gives (specs/backup.md).
struct StoreSection {
  size_t headerAt = 0;
  uint64_t length = 0;
};

StoreSection storeSectionOf(const std::string& bytes) {
  size_t at = kith::cli::BACKUP_HEADER_BYTES;
  while (at + kith::cli::BACKUP_SECTION_HEADER_BYTES <= bytes.size() - kith::cli::BACKUP_CHECKSUM_BYTES) {
    auto p = reinterpret_cast<const uint8_t*>(bytes.data() + at);
    uint64_t length = kith::getU64(p + 8);
    if (kith::getU32(p) == static_cast<uint32_t>(kith::cli::BackupSection::STORE)) return {at, length};
    at += kith::cli::BACKUP_SECTION_HEADER_BYTES + length;
  }
  FAIL("the backup has no store section");
  return {};
}

}  // namespace

TEST_CASE("a backup taken while the node serves restores a home that shows the same and serves a friend every entry",
          "[system][backup]") {
  const uint64_t seed = kith::test::testSeed("backup system test (the seed only makes the posted sentences unique)");
  const std::string tag = " (" + std::to_string(seed) + ")";
  const std::string title = "Mum's recovery" + tag;
  const std::string firstUpdate = "Mum's surgery went well, she is home on Thursday" + tag;
  const std::string comment = "So glad to hear it, we will bring soup on Friday" + tag;
  const std::string laterUpdate = "Posted while the friend's node was off: physio starts Monday" + tag;

  Home owner("owner"), friendHome("friend"), cousin("cousin");
  const std::string journal = owner.kithJson({"journal", "create", title}).at("id").get<std::string>();
  TempDir backups;
  const std::string file = backups / "family.kith";
  std::string restoredAddress;
  json originalView;
  json backedUp;
  {
    Serve ownerNode(owner);
    const std::string address = ownerNode.address();

    // A member by invite (the friend), a granted one (the cousin) and an invite still open.
    const std::string code = owner.kithJson({"invite", "--address", address}).at("code").get<std::string>();
    REQUIRE(friendHome.kithJson({"accept", code}).at("journal") == journal);
    REQUIRE(owner.kithJson({"grant", cousin.id()}).at("role") == "subscriber");
    // A known peer, so that the home has a config.json for the backup to carry.
    owner.kithJson({"peers", "add", "127.0.0.1:1", cousin.id()});
    owner.kithJson({"invite", "--address", address, "--role", "coauthor"});

    // The friend reads, comments and hearts; the owner's node receives both.
    const std::string updateId = owner.kithJson({"post", firstUpdate}).at("id").get<std::string>();
    {
      Serve friendNode(friendHome);
      REQUIRE(eventually(REPLICATION_TIMEOUT_MS,
                         [&] { return entryWithText(friendHome.read(), firstUpdate).has_value(); }));
      friendHome.kithOk({"comment", updateId.substr(0, 10), comment});
      friendHome.kithOk({"heart", updateId.substr(0, 10)});
      json last;
      bool seen = eventually(REPLICATION_TIMEOUT_MS, [&] {
        last = owner.read();
        return showsReactions(last, firstUpdate, comment, friendHome.id(), friendHome.id());
      });
      INFO(last.dump(2) << "\n--- owner's log ---\n" << ownerNode.log());
      REQUIRE(seen);
      friendNode.stop();
    }
    // Something the friend's node has not got: it comes to the friend from the restored node.
    owner.kithOk({"post", laterUpdate});
    REQUIRE_FALSE(entryWithText(friendHome.read(), laterUpdate).has_value());

    // The backup, while the owner's node holds the store open.
    originalView = viewOf(owner);
    backedUp = owner.kithJson({"backup", file});
    INFO(backedUp.dump(2));
    CHECK(backedUp.at("id") == owner.id());
    CHECK(backedUp.at("journals") == 1);
    CHECK(backedUp.at("entries") == originalView.at("journals").at(0).at("entries"));
    CHECK(backedUp.at("key_encrypted") == false);
    CHECK(contains(backedUp.at("warning").get<std::string>(), "unencrypted"));
    CHECK(backedUp.at("config") == true);
    CHECK(backedUp.at("bytes").get<uint64_t>() == fs::file_size(file));
    struct stat st;
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    // Only the backup is in its folder: the temporary file was renamed, not copied.
    CHECK(listing(backups.path()) == std::vector<std::string>{"family.kith"});
    // The text output says plainly that the key inside is not encrypted.
    CHECK(contains(owner.kithOk({"backup", backups / "second.kith"}).out, "UNENCRYPTED"));
    // The node kept serving through both.
    json status = owner.kithJson({"status"});
    REQUIRE(status.at("node") == "serving");
    REQUIRE(status.at("listen") == address);
    ownerNode.stop();
  }

  // Nothing posted is readable in the backup file.
  for (const std::string& text : {title, firstUpdate, comment, laterUpdate}) {
    INFO(text);
    CHECK_FALSE(anyFileContains(backups.path(), text));
  }

  // Restore into a new home, with --home after the command.
  Home restored("restored", false);
  RunResult r = kith::test::run({kithBinary(), "--json", "restore", file, "--home", restored.path()}, kithOptions());
  requireNoCrash(r);
  {
    INFO(describe(r));
    REQUIRE(r.exitCode == 0);
  }
  json restoredJson = json::parse(r.out);
  CHECK(restoredJson.at("id") == owner.id());
  CHECK(restoredJson.at("fingerprint") == originalView.at("id").at("fingerprint"));
  CHECK(restoredJson.at("journals") == 1);
  CHECK(restoredJson.at("entries") == backedUp.at("entries"));
  // The text form names the next step.
  {
    Home again("restored again", false);
    RunResult text = kith::test::run({kithBinary(), "--home", again.path(), "restore", file}, kithOptions());
    requireNoCrash(text);
    INFO(describe(text));
    REQUIRE(text.exitCode == 0);
    CHECK(contains(text.out, "Next: start the node with 'kith serve'"));
    CHECK(contains(text.out, owner.id()));
  }

  // Members, invites, the timeline with its comment and heart, the journal list and the peers
  // are exactly the original's.
  json restoredView = viewOf(restored);
  CHECK(restoredView.at("members") == originalView.at("members"));
  CHECK(restoredView.at("invites") == originalView.at("invites"));
  CHECK(restoredView.at("read") == originalView.at("read"));
  CHECK(restoredView.at("journals") == originalView.at("journals"));
  CHECK(restoredView.at("peers") == originalView.at("peers"));
  CHECK(restoredView.at("id") == originalView.at("id"));
  REQUIRE(showsReactions(restoredView.at("read"), firstUpdate, comment, friendHome.id(), friendHome.id()));
  REQUIRE(originalView.at("members").size() == 3);
  REQUIRE(originalView.at("invites").size() == 2);

  // The restored node serves in the original's place: the friend learns its new address and
  // syncs every entry from it, the one it had missed included.
  {
    Serve restoredNode(restored);
    friendHome.kithOk({"peers", "add", restoredNode.address(), owner.id()});
    json synced = friendHome.kithJson({"sync", "--once"});
    INFO(synced.dump(2) << "\n--- restored node's log ---\n" << restoredNode.log());
    CHECK(synced.at("peers_reached") == 1);
    CHECK(synced.at("failures").empty());
    json friendEntries = friendHome.read();
    REQUIRE(entryWithText(friendEntries, laterUpdate).has_value());
    REQUIRE(idsOf(friendEntries) == idsOf(restoredView.at("read")));
    REQUIRE(showsReactions(friendEntries, firstUpdate, comment, friendHome.id(), friendHome.id()));
    restoredNode.stop();
  }
}

TEST_CASE("a damaged, truncated, foreign or oversized backup is refused with one line and creates nothing",
          "[system][backup]") {
  Home owner("owner");
  owner.kithJson({"journal", "create", "Mum's recovery"});
  owner.kithOk({"post", "She is home on Thursday"});
  TempDir files;
  const std::string good = files / "good.kith";
  owner.kithJson({"backup", good});
  const std::string bytes = readFile(good);
  REQUIRE(bytes.size() > kith::cli::BACKUP_HEADER_BYTES + kith::cli::BACKUP_CHECKSUM_BYTES);

  TempDir targets;
  auto refusedRestore = [&](const std::string& file, const std::vector<std::string>& words) {
    const std::string target = targets / "home";
    RunResult r = kith::test::run({kithBinary(), "--home", target, "restore", file}, kithOptions());
    std::string line = requireRefusal(r, words);
    INFO(line);
    CHECK(contains(line, file));
    // Nothing at the target, and no temporary folder beside it.
    CHECK_FALSE(fs::exists(target));
    CHECK(listing(targets.path()).empty());
    return line;
  };

  SECTION("one flipped byte anywhere: in the magic, the version, a length, the key file, the store or the checksum") {
    const size_t positions[] = {0,
                                kith::cli::BACKUP_MAGIC_BYTES + 3,
                                kith::cli::BACKUP_HEADER_BYTES - 1,
                                kith::cli::BACKUP_HEADER_BYTES + 8,
                                kith::cli::BACKUP_HEADER_BYTES + kith::cli::BACKUP_SECTION_HEADER_BYTES + 1,
                                bytes.size() / 2,
                                bytes.size() - kith::cli::BACKUP_CHECKSUM_BYTES - 1,
                                bytes.size() - 1};
    for (size_t at : positions) {
      INFO("byte " << at << " of " << bytes.size());
      std::string flipped = bytes;
      flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
      const std::string file = files / ("flipped-" + std::to_string(at) + ".kith");
      writeFile(file, flipped);
      refusedRestore(file, {"damaged", "not a kith backup", "version"});
    }
    // The checksum is what catches a change inside the store.
    std::string flipped = bytes;
    flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x80);
    writeFile(files / "middle.kith", flipped);
    CHECK(contains(refusedRestore(files / "middle.kith", {"checksum"}), "damaged"));
  }
  SECTION("a truncated backup, cut anywhere") {
    for (size_t length :
         {size_t{0}, size_t{10}, kith::cli::BACKUP_HEADER_BYTES + 4, bytes.size() / 2, bytes.size() - 1}) {
      INFO("cut to " << length << " of " << bytes.size() << " bytes");
      const std::string file = files / ("cut-" + std::to_string(length) + ".kith");
      writeFile(file, bytes.substr(0, length));
      refusedRestore(file, {"truncated", "too short", "damaged"});
    }
  }
  SECTION("a folder, a device and a missing file") {
    CHECK(contains(refusedRestore(files.path(), {"folder"}), "not a kith backup"));
    refusedRestore("/dev/zero", {"not a regular file"});
    RunResult r =
        kith::test::run({kithBinary(), "--home", targets / "home", "restore", files / "missing.kith"}, kithOptions());
    requireRefusal(r, {"no file"});
    CHECK(listing(targets.path()).empty());
  }
  SECTION("a foreign file and one larger than any backup") {
    std::string foreign(64 * 1024, 'x');
    writeFile(files / "foreign.kith", foreign);
    refusedRestore(files / "foreign.kith", {"not a kith backup"});
    writeFile(files / "newer.kith", std::string(kith::cli::BACKUP_MAGIC) + std::string(4, '\0') + bytes.substr(12));
    refusedRestore(files / "newer.kith", {"version"});
    // A sparse file: its size is checked before anything is read.
    const std::string big = files / "big.kith";
    writeFile(big, "");
    fs::resize_file(big, kith::cli::BACKUP_FILE_BYTES_MAX + 1);
    refusedRestore(big, {"larger than any kith backup"});
  }
  SECTION("a store that does not open, behind a checksum that holds") {
    // The store section zeroed and the checksum made again: only opening the store can tell.
    std::string zeroed = bytes;
    const StoreSection store = storeSectionOf(bytes);
    const uint64_t storeOffset = store.headerAt + kith::cli::BACKUP_SECTION_HEADER_BYTES;
    const uint64_t storeBytes = store.length;
    std::fill(zeroed.begin() + static_cast<std::ptrdiff_t>(storeOffset),
              zeroed.begin() + static_cast<std::ptrdiff_t>(storeOffset + storeBytes), '\0');
    const size_t sectionsEnd = zeroed.size() - kith::cli::BACKUP_CHECKSUM_BYTES;
    crypto_generichash(reinterpret_cast<uint8_t*>(zeroed.data() + sectionsEnd), kith::cli::BACKUP_CHECKSUM_BYTES,
                       reinterpret_cast<const uint8_t*>(zeroed.data()), sectionsEnd, nullptr, 0);
    writeFile(files / "zeroed.kith", zeroed);
    CHECK(contains(refusedRestore(files / "zeroed.kith", {"store does not open"}), "damaged"));
  }
  SECTION("a section that claims more than its limit or more than the file holds") {
    // The key file section's length (bytes 24..31, big-endian) set to 4 GiB, over its limit.
    std::string huge = bytes;
    for (size_t i = 0; i < 8; ++i) huge[24 + i] = i == 3 ? '\x01' : '\0';
    writeFile(files / "huge.kith", huge);
    refusedRestore(files / "huge.kith", {"at most"});
    // The store's length one byte past the end of the file.
    std::string longer = bytes;
    const StoreSection store = storeSectionOf(bytes);
    std::string length(8, '\0');
    uint64_t claimed = store.length + kith::cli::BACKUP_CHECKSUM_BYTES + 1;
    for (int i = 7; i >= 0; --i, claimed >>= 8) length[static_cast<size_t>(i)] = static_cast<char>(claimed & 0xff);
    longer.replace(store.headerAt + 8, 8, length);
    writeFile(files / "longer.kith", longer);
    CHECK(contains(refusedRestore(files / "longer.kith", {"ends before"}), "store section"));
  }
}

TEST_CASE("restore never writes over a home with an identity and backup never replaces a file", "[system][backup]") {
  Home owner("owner"), other("other");
  owner.kithJson({"journal", "create", "Mum's recovery"});
  TempDir files;
  const std::string file = files / "family.kith";
  owner.kithJson({"backup", file});
  const std::string bytes = readFile(file);

  SECTION("restore onto a home with an identity") {
    std::string line = requireRefusal(other.kith({"restore", file}), {"already has an identity"});
    CHECK(contains(line, "move the existing home aside"));
    CHECK(other.kithJson({"id"}).at("id") == other.id());
    CHECK(other.kithJson({"journal", "list"}).empty());
  }
  SECTION("restore onto a folder that is not empty") {
    TempDir target;
    writeFile(target / "notes.txt", "not a home");
    RunResult r = kith::test::run({kithBinary(), "--home", target.path(), "restore", file}, kithOptions());
    requireRefusal(r, {"not an empty folder"});
    CHECK(listing(target.path()) == std::vector<std::string>{"notes.txt"});
  }
  SECTION("backup onto an existing file or a folder") {
    writeFile(files / "other.txt", "keep me");
    std::string line = requireRefusal(owner.kith({"backup", files / "other.txt"}), {"exists already"});
    CHECK(contains(line, "choose another name"));
    CHECK(readFile(files / "other.txt") == "keep me");
    requireRefusal(owner.kith({"backup", file}), {"exists already"});
    CHECK(readFile(file) == bytes);
    requireRefusal(owner.kith({"backup", files.path()}), {"is a folder"});
    CHECK(listing(files.path()) == (std::vector<std::string>{"family.kith", "other.txt"}));
  }
}

TEST_CASE("a passphrase home's backup keeps the key sealed and restores with the same passphrase", "[system][backup]") {
  Home owner("owner", true, PASSPHRASE);
  owner.kithJson({"journal", "create", "Mum's recovery"});
  const std::string posted = owner.kithJson({"post", "She is home on Thursday"}).at("id").get<std::string>();
  TempDir files;
  const std::string file = files / "family.kith";
  json written = owner.kithJson({"backup", file});
  CHECK(written.at("key_encrypted") == true);
  CHECK_FALSE(written.contains("warning"));
  // The key file inside is the one at home, byte for byte (sealed), and the passphrase is nowhere.
  const std::string key = readFile(owner.path() + "/identity.key");
  CHECK(contains(readFile(file), key));
  CHECK_FALSE(anyFileContains(files.path(), PASSPHRASE));

  Home restored("restored", false, PASSPHRASE);
  json done = restored.kithJson({"restore", file});
  CHECK(done.at("id") == owner.id());
  CHECK(readFile(restored.path() + "/identity.key") == key);
  CHECK(idsOf(restored.read()) == idsOf(owner.read()));
  CHECK(idsOf(restored.read()).back() == posted);
  // Without the passphrase the restored identity stays locked.
  Home locked("locked", false, std::string("not the passphrase"));
  locked.kithJson({"restore", file});
  requireRefusal(locked.kith({"read"}), {"passphrase"});
}
