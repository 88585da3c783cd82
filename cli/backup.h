// Backups of a home: one file that holds a compacted, consistent copy of the store, the key file
// exactly as it is at home (sealed with the passphrase, or plain for a --no-passphrase home) and
// config.json when there is one. The byte layout is specs/backup.md; its limits are in
// cli/limits.h. Nothing is decrypted or re-encrypted: a backup is as readable as the home.
//
//   writeBackup    a backup of an open home, while `kith serve` may run (the store is copied
//                  from one LMDB read transaction), written atomically beside its name
//   restoreBackup  checks the whole file first, then builds the home in a temporary folder and
//                  renames it into place (buildHomeAtomically), so that nothing half-made remains
//
// Threading: one call at a time per home; each reads and writes only the files it names.
// Caveats:
// - The store section is streamed in chunks of BACKUP_CHUNK_BYTES: a large store is never held
//   in memory, but it is read twice when written (once to copy, once for the checksum) and twice
//   when restored (once to check, once to copy, checking again as it goes).
// - Errors are kith::Error whose message names the file: CONFLICT (the backup file or the home
//   exists already), NOT_FOUND / INPUT (no such file, a folder or a device), CORRUPT (not a kith
//   backup, a newer version, damaged, truncated, a length over a limit), IO (the disk failed).
#pragma once
#include <cstdint>
#include <string>

#include "cli/home.h"
#include "cli/limits.h"
#include "crypto/key-file.h"
#include "store/store.h"

namespace kith::cli {

// The first eight bytes of every backup, then its format version.
inline constexpr char BACKUP_MAGIC[] = "KITHBACK";
constexpr size_t BACKUP_MAGIC_BYTES = 8;
static_assert(sizeof(BACKUP_MAGIC) == BACKUP_MAGIC_BYTES + 1);
constexpr uint32_t BACKUP_VERSION = 1;

// Section types, in the order they must appear.
enum class BackupSection : uint32_t {
  KEY_FILE = 1,  // identity.key, byte for byte (required)
  CONFIG = 2,    // config.json, byte for byte (optional)
  STORE = 3,     // store/data.mdb, compacted (required)
};

// What a backup holds, as the commands report it.
struct BackupSummary {
  std::string file;           // the backup file
  std::string home;           // the home it was made from, or restored into
  uint64_t fileBytes = 0;     // the backup file's size
  uint64_t storeBytes = 0;    // the store section's size
  crypto::KeyFileInfo key{};  // the identity's public key, and whether a passphrase seals it
  bool hasConfig = false;
  size_t journals = 0;
  uint64_t entries = 0;
};

// Writes a backup of `home`, whose store `store` is, to the new file `path`: a temporary file
// beside it, fsync, then a rename that never replaces anything (mode 0600). Throws
// Error(CONFLICT) when `path` exists, Error(IO) for a full disk; the temporary file is removed
// on any failure. The counts are the store's at the start; the copy holds at least those.
BackupSummary writeBackup(const Home& home, const store::Store& store, const std::string& path);

// Checks the backup `path` entirely (type, size, magic, version, every length, checksum, the key
// file inside), then builds a new home at `homePath` from it and opens its store once to prove
// it opens. Throws Error(CONFLICT) when `homePath` has an identity or is a folder that is not
// empty; nothing is created at `homePath` unless the whole restore succeeded.
BackupSummary restoreBackup(const std::string& path, const std::string& homePath);

}  // namespace kith::cli
