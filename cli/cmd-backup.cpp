// The backup commands: `kith backup FILE` writes one file holding the home (the store, compacted,
// and the key file as it is); `kith restore FILE` (with the global --home DIR) makes a new home
// from it. The work is in cli/backup.h; here are the words people read.
#include <cstdio>
#include <sstream>

#include "cli/backup.h"
#include "cli/commands.h"
#include "crypto/fingerprint.h"

namespace kith::cli {
namespace {

using nlohmann::json;

// "812 bytes", "3.4 MiB": for people; --json gives the exact count.
std::string humanBytes(uint64_t bytes) {
  constexpr uint64_t KIB = 1024;
  if (bytes < KIB) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / KIB;
  size_t unit = 0;
  while (value >= KIB && unit + 1 < std::size(units)) {
    value /= KIB;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", value, units[unit]);
  return buf;
}

json summaryJson(const BackupSummary& s) {
  return {{"file", s.file},
          {"home", s.home},
          {"bytes", s.fileBytes},
          {"store_bytes", s.storeBytes},
          {"id", toHex(s.key.publicKey)},
          {"fingerprint", crypto::fingerprint(s.key.publicKey)},
          {"key_encrypted", s.key.sealed},
          {"config", s.hasConfig},
          {"journals", s.journals},
          {"entries", s.entries}};
}

void cmdBackup(Context& ctx, const std::string& file) {
  BackupSummary s = writeBackup(ctx.home(), ctx.store(), file);
  json j = summaryJson(s);
  std::ostringstream text;
  text << "Wrote the backup " << s.file << " (" << humanBytes(s.fileBytes)
       << "): " << countOf(s.journals, "journal", "journals") << ", " << countOf(s.entries, "entry", "entries")
       << ", the key file" << (s.hasConfig ? " and config.json" : "") << ".\n"
       << "  id:          " << toHex(s.key.publicKey) << "\n"
       << "  fingerprint: " << crypto::fingerprint(s.key.publicKey) << "\n";
  if (s.key.sealed) {
    text << "The key inside is sealed with your passphrase, as at home: without the passphrase the backup\n"
            "cannot be restored to a working identity, so keep the passphrase too.\n";
  } else {
    j["warning"] = "the backup holds the identity's key unencrypted";
    text << "WARNING: this home has no passphrase (--no-passphrase), so the backup holds your key\n"
            "UNENCRYPTED: anyone with the file can post as you and read your journals. Keep it as safe\n"
            "as the home itself (the file is readable only by you, mode 0600).\n";
  }
  text << "Restore it with 'kith --home DIR restore " << s.file << "'.";
  ctx.print(j, text.str());
}

void cmdRestore(Context& ctx, const std::string& file) {
  BackupSummary s = restoreBackup(file, ctx.home().path());
  std::ostringstream text;
  text << "Restored the home " << s.home << " from " << s.file << "\n"
       << "  id:          " << toHex(s.key.publicKey) << "\n"
       << "  fingerprint: " << crypto::fingerprint(s.key.publicKey) << "\n"
       << "  journals:    " << s.journals << " (" << countOf(s.entries, "entry", "entries") << ")\n"
       << "What was posted after this backup is on your friends' nodes: let the node catch up with them\n"
          "before you post again.\n"
       << "Next: start the node with 'kith serve'.";
  ctx.print(summaryJson(s), text.str());
}

}  // namespace

void addBackupCommands(Commands& commands) {
  commands.add<std::string>(
      "backup",
      "Write the home (journals, members, invites, the key file) to one new file; works while 'kith serve' runs",
      [](CLI::App& cmd, std::string& file) {
        cmd.add_option("FILE", file, "The new backup file (it must not exist yet)")->required();
      },
      cmdBackup);
  commands.add<std::string>(
      "restore", "Make a new home from a backup: 'kith restore FILE --home DIR' (the folder must be new or empty)",
      [](CLI::App& cmd, std::string& file) {
        cmd.add_option("FILE", file, "The backup file that 'kith backup FILE' wrote")->required();
      },
      cmdRestore);
}

}  // namespace kith::cli
