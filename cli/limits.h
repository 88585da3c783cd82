// The cli layer's limits: passphrases, the home's files and the backup format (cli/backup.h,
// specs/backup.md).
#pragma once
#include <cstddef>
#include <cstdint>

#include "store/limits.h"

namespace kith::cli {

// Choosing a passphrase (cli/passphrase.h, specs/identity.md "Choosing a passphrase"). The Argon2id
// cost protects a stolen key file only as well as the passphrase does, so a new one has at least
// this many characters (Unicode code points)...
constexpr size_t PASSPHRASE_CHARS_MIN = 10;
// ... of which at least this many different ones ("aaaaaaaaaa" and "abababababab" are refused).
constexpr size_t PASSPHRASE_DISTINCT_CHARS_MIN = 5;
// A passphrase, in bytes, from KITH_PASSPHRASE or the terminal.
constexpr size_t PASSPHRASE_BYTES_MAX = 1024;

// config.json: a home refuses a larger one, and a backup's config section holds it as it is.
constexpr size_t CONFIG_BYTES_MAX = size_t{1} << 20;

// Backups. The reader checks every length in a backup's header against these and against the
// file's size before it allocates or writes anything.
// Sections in one backup: the key file, config.json and the store, each at most once.
constexpr size_t BACKUP_SECTIONS_MAX = 3;
// The key file section holds identity.key as it is (crypto::KEY_FILE_BYTES_MAX, asserted there).
constexpr size_t BACKUP_KEY_FILE_BYTES_MAX = 4096;
constexpr size_t BACKUP_CONFIG_BYTES_MAX = CONFIG_BYTES_MAX;
// The compacted LMDB data file: never larger than the largest map a store may have.
constexpr uint64_t BACKUP_STORE_BYTES_MAX = store::MAP_BYTES_MAX;
// The fixed parts of the format: the file header, each section's header and the BLAKE2b-256
// checksum at the end.
constexpr size_t BACKUP_HEADER_BYTES = 16;
constexpr size_t BACKUP_SECTION_HEADER_BYTES = 16;
constexpr size_t BACKUP_CHECKSUM_BYTES = 32;
// The whole file: its header, every section at its largest, and the checksum.
constexpr uint64_t BACKUP_FILE_BYTES_MAX = BACKUP_HEADER_BYTES + BACKUP_SECTIONS_MAX * BACKUP_SECTION_HEADER_BYTES +
                                           BACKUP_KEY_FILE_BYTES_MAX + BACKUP_CONFIG_BYTES_MAX +
                                           BACKUP_STORE_BYTES_MAX + BACKUP_CHECKSUM_BYTES;
// The buffer the store section is streamed through when writing, checking and restoring a backup.
constexpr size_t BACKUP_CHUNK_BYTES = size_t{1} << 20;

// `kith serve` writes its status file (peers and relays reached) at most this often.
constexpr unsigned SERVE_STATUS_DELAY_MS = 1000;
// `kith accept` through a relay waits this long for the owner's node to answer.
constexpr unsigned ACCEPT_RELAY_WAIT_MS = 60000;
// After joining through a relay, `kith accept` waits this long for the journal's first entries.
constexpr unsigned ACCEPT_RELAY_CATCHUP_MS = 20000;

}  // namespace kith::cli
