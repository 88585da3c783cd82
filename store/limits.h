// The store layer's limits.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kith::store {

// The schema version this build reads and writes; a store with another one is refused. Version 2:
// member records hold tenures, and entries are of entry format 2 (specs/entry.md).
constexpr unsigned SCHEMA_VERSION = 2;
// LMDB's map starts here and doubles when full, up to the maximum.
constexpr size_t MAP_BYTES_INITIAL = size_t{64} << 20;
constexpr size_t MAP_BYTES_MAX = size_t{1} << 40;
// Named tables in the environment.
constexpr unsigned TABLES_MAX = 16;
// Entries appended in one write transaction by appendBatch (callers split larger batches).
constexpr size_t APPEND_BATCH_MAX = 4096;
// Entries returned by one range() call.
constexpr size_t RANGE_LIMIT_MAX = 4096;
// Fork evidence (a second signed entry at a used seq) kept per author per journal, and never more
// than one per (author, seq): a member that forks at will cannot fill the store. The rest is
// refused and counted (AppendOutcome::evidenceKept).
constexpr size_t FORKS_PER_AUTHOR_MAX = 16;
// Problems listed by one checkIntegrity: a badly damaged store could yield one per row; past this
// many the rest are counted only.
constexpr size_t CHECK_PROBLEMS_MAX = 1000;

}  // namespace kith::store
