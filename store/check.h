// The store's integrity check (Store::checkIntegrity, store/check.cpp): one read transaction over
// every table, each problem found reported as a value, never as an exception. `kith check` prints
// them; specs/entry.md ("What is checked where") says what it checks that everyday reads do not.
//
// Threading: values only.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/entry.h"

namespace kith::store {

// What Store::checkIntegrity finds wrong: one value per problem, never an exception.
enum class ProblemKind {
  STORE_UNREADABLE,  // LMDB itself reports damage while walking a table
  RECORD_DAMAGED,    // a journal, member, head, epoch-key, fork or invite record does not decode
  ENTRY_DAMAGED,     // an entry's stored bytes fail to decode or verify, or sit at the wrong key
  CHAIN_BROKEN,      // an author's seqs are not 1..n, or a prev is not the previous entry's id
  INDEX_MISMATCH,    // the ids or timeline index disagrees with the entries
  HEAD_MISMATCH,     // a head is not its author's last entry
  COUNT_MISMATCH,    // the journal record's entry count or last time disagrees with its entries
};
const char* problemKindName(ProblemKind kind);  // "entry-damaged", ...

struct StoreProblem {
  ProblemKind kind = ProblemKind::STORE_UNREADABLE;
  std::optional<protocol::JournalId> journal;
  std::optional<protocol::EntryId> entry;
  std::string text;  // what is wrong, one line
  std::string hint;  // what to do about it
};

struct CheckOptions {
  std::optional<protocol::JournalId> journal;  // only this journal's rows (and the tables' shapes)
  std::optional<ByteView> storageKey;          // when given, every epoch key must open under it
};

struct CheckReport {
  uint64_t journals = 0;  // journal records walked
  uint64_t entries = 0;   // entries walked
  std::vector<StoreProblem> problems;
};

}  // namespace kith::store
