// The integrity check (store/check.h): one read transaction over every table, problems as
// values. Unlike everyday reads it re-derives everything: each entry decodes and its signature
// verifies, chains, indexes, heads and counts agree, and every record decodes.
#include <climits>
#include <set>

#include "store/store-impl.h"

namespace kith::store {

using namespace internal;
using protocol::EntryError;

const char* problemKindName(ProblemKind kind) {
  switch (kind) {
    case ProblemKind::STORE_UNREADABLE:
      return "store-unreadable";
    case ProblemKind::RECORD_DAMAGED:
      return "record-damaged";
    case ProblemKind::ENTRY_DAMAGED:
      return "entry-damaged";
    case ProblemKind::CHAIN_BROKEN:
      return "chain-broken";
    case ProblemKind::INDEX_MISMATCH:
      return "index-mismatch";
    case ProblemKind::HEAD_MISMATCH:
      return "head-mismatch";
    case ProblemKind::COUNT_MISMATCH:
      return "count-mismatch";
  }
  return "unknown";
}

namespace {

// The entries are signed, so the other members of a journal hold the same bytes: a restored
// backup or a fresh copy from them repairs any of these problems.
const std::string HINT_CHECK_RESTORE =
    std::string(HINT_RESTORE_KEY) + ", or follow the journal again from a peer in a new home";
constexpr const char* HINT_CHECK_INVITES = "cancel the invites ('kith invite cancel') and make new ones";

struct CheckTables {
  const Table& journals;
  const Table& entries;
  const Table& ids;
  const Table& heads;
  const Table& timeline;
  const Table& members;
  const Table& epochs;
  const Table& forks;
  const Table& invites;
};

class Checker {
public:
  Checker(const Txn& txn, const CheckTables& tables, const CheckOptions& options)
      : txn_(txn), t_(tables), options_(options) {
    if (options.journal) prefix_.assign(options.journal->begin(), options.journal->end());
  }

  CheckReport run() {
    bool journalsRead = walk("journal table", [&] { walkJournals(); });
    bool idsRead = walk("ids index", [&] { walkIds(); });
    bool timelineRead = walk("timeline index", [&] { walkTimeline(); });
    bool entriesRead = walk("entry table", [&] { walkEntries(); });
    // Comparing an index with a table read only in part would report every unread row.
    if (entriesRead) {
      if (idsRead) walk("ids index", [&] { compareIds(); });
      if (timelineRead) walk("timeline index", [&] { compareTimeline(); });
      walk("head table", [&] { walkHeads(); });
      if (journalsRead) compareCounts(timelineRead);
    }
    walk("member table", [&] { walkMembers(); });
    walk("epoch-key table", [&] { walkEpochKeys(); });
    walk("fork table", [&] { walkForks(); });
    walk("invite table", [&] { walkInvites(); });
    // Only LMDB reads its free-page list (on the next write); walking it is all there is to check.
    walk("free-page list", [&] { Table::freePages().scan(txn_, {}, [](ByteView, ByteView) { return true; }); });
    if (dropped_ > 0) {
      report_.problems.push_back({ProblemKind::STORE_UNREADABLE, options_.journal, std::nullopt,
                                  "and " + std::to_string(dropped_) + " more problems not listed", HINT_CHECK_RESTORE});
    }
    return std::move(report_);
  }

private:
  struct EntryState {
    JournalId journal{};
    std::optional<EntryId> id;  // known when the entry decoded
    int64_t timestampMs = 0;
    uint32_t idRows = 0;
    uint32_t timelineRows = 0;
    size_t valueHash = 0;  // of the stored bytes as the walk of the table read them
  };
  struct AuthorState {
    uint64_t lastSeq = 0;
    std::optional<EntryId> lastId = EntryId{};  // a genesis's prev is all zero
    bool headSeen = false;
  };
  struct Tally {
    uint64_t entries = 0;
    uint64_t timelineRows = 0;
    int64_t lastEntryMs = INT64_MIN;
    bool allDecoded = true;
  };
  struct Row {
    Bytes entryKey;
    EntryId id{};
    int64_t timestampMs = 0;  // timeline rows only
  };

  const Txn& txn_;
  CheckTables t_;
  const CheckOptions& options_;
  Bytes prefix_;  // the journal asked for, or empty for all
  CheckReport report_;
  size_t dropped_ = 0;

  std::map<JournalId, std::optional<JournalRecord>> journals_;  // nullopt: the record is damaged
  std::map<Bytes, EntryState> entries_;                         // by entry key
  std::map<Bytes, AuthorState> authors_;                        // by journal | author
  std::map<JournalId, Tally> tallies_;
  std::vector<Row> idRows_, timelineRows_;
  std::map<Bytes, EntryId> idAt_;  // an id the indexes give a place

  void problem(ProblemKind kind, std::optional<JournalId> journal, std::optional<EntryId> entry, std::string text,
               std::string hint = HINT_CHECK_RESTORE) {
    if (report_.problems.size() >= CHECK_PROBLEMS_MAX) {
      ++dropped_;
      return;
    }
    report_.problems.push_back({kind, journal, entry, std::move(text), std::move(hint)});
  }

  // Runs one table's walk; LMDB's own errors (a damaged page it notices) become a problem.
  bool walk(const char* what, const std::function<void()>& fn) {
    try {
      fn();
      return true;
    } catch (const Error& e) {
      problem(ProblemKind::STORE_UNREADABLE, options_.journal, std::nullopt,
              std::string("the store's ") + what + " cannot be read to its end (" + e.what() + ")");
      return false;
    }
  }

  bool wanted(const JournalId& journal) const { return !options_.journal || *options_.journal == journal; }

  std::string entryName(const std::optional<EntryId>& id, const PublicKey& author, uint64_t seq) const {
    std::string where = "seq " + std::to_string(seq) + " of author " + shortId(author, 8);
    return id ? "entry " + shortId(*id) + " (" + where + ")" : "the entry at " + where;
  }

  void walkJournals() {
    t_.journals.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      if (k.size() != 32) {
        problem(ProblemKind::RECORD_DAMAGED, std::nullopt, std::nullopt, "a journal record has a damaged key");
        return true;
      }
      JournalId j = key32At(k.data());
      ++report_.journals;
      try {
        journals_[j] = JournalRecord::decode(v);
      } catch (const Error&) {
        journals_[j] = std::nullopt;
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt,
                "the journal's record (its owner, epoch and counts) is damaged");
      }
      return true;
    });
  }

  void walkIds() {
    t_.ids.scan(txn_, {}, [&](ByteView k, ByteView v) {
      if (v.size() >= 32 && !wanted(key32At(v.data()))) return true;
      if (k.size() != 32 || v.size() != ENTRY_KEY_BYTES) {
        problem(ProblemKind::INDEX_MISMATCH, options_.journal, std::nullopt, "a row of the ids index is damaged");
        return true;
      }
      Row row{Bytes(v.begin(), v.end()), key32At(k.data())};
      idAt_.emplace(row.entryKey, row.id);
      idRows_.push_back(std::move(row));
      return true;
    });
  }

  void walkTimeline() {
    t_.timeline.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      if (k.size() != TIMELINE_KEY_BYTES || v.size() != TIMELINE_VALUE_BYTES) {
        std::optional<JournalId> j;
        if (k.size() >= 32) j = key32At(k.data());
        problem(ProblemKind::INDEX_MISMATCH, j, std::nullopt, "a row of the timeline index is damaged");
        return true;
      }
      JournalId j = key32At(k.data());
      Row row{cat({j, v}), key32At(k.data() + 32 + 8), timeFromOrdered(getU64(k.data() + KEY_BYTES))};
      idAt_.emplace(row.entryKey, row.id);
      timelineRows_.push_back(std::move(row));
      ++tallies_[j].timelineRows;
      return true;
    });
  }

  void walkEntries() {
    std::set<JournalId> unrecorded;
    t_.entries.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      if (k.size() != ENTRY_KEY_BYTES) {
        std::optional<JournalId> j;
        if (k.size() >= 32) j = key32At(k.data());
        problem(ProblemKind::ENTRY_DAMAGED, j, std::nullopt, "an entry row has a damaged key");
        return true;
      }
      JournalId j = key32At(k.data());
      PublicKey author = key32At(k.data() + 32);
      uint64_t seq = getU64(k.data() + 64);
      Bytes key(k.begin(), k.end());
      ++report_.entries;
      Tally& tally = tallies_[j];
      ++tally.entries;
      if (!journals_.contains(j) && unrecorded.insert(j).second) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "the journal has entries but no journal record");
      }

      EntryState state;
      state.journal = j;
      state.valueHash = hashOf(v);
      std::optional<Entry> e;
      try {
        e = protocol::decodePackedEntry(v);  // verifies the signature
      } catch (const EntryError& err) {
        tally.allDecoded = false;
        std::optional<EntryId> id;
        if (auto it = idAt_.find(key); it != idAt_.end()) id = it->second;
        problem(ProblemKind::ENTRY_DAMAGED, j, id, entryName(id, author, seq) + " fails verification: " + err.what());
      }
      if (e && (e->journal != j || e->author != author || e->seq != seq)) {
        tally.allDecoded = false;
        problem(ProblemKind::ENTRY_DAMAGED, j, e->id,
                "entry " + shortId(e->id) + " is stored at the place of " + entryName(std::nullopt, author, seq));
        e.reset();
      }
      if (e) {
        state.id = e->id;
        state.timestampMs = e->timestampMs;
        tally.lastEntryMs = std::max(tally.lastEntryMs, e->timestampMs);
      }

      AuthorState& chain = authors_[headKey(j, author)];
      if (seq != chain.lastSeq + 1) {
        problem(ProblemKind::CHAIN_BROKEN, j, state.id,
                "author " + shortId(author, 8) + "'s entries jump from seq " + std::to_string(chain.lastSeq) +
                    " to seq " + std::to_string(seq) + " (entries are missing)");
      } else if (e && chain.lastId && e->prev != *chain.lastId) {
        problem(ProblemKind::CHAIN_BROKEN, j, e->id,
                "entry " + shortId(e->id) + "'s prev is not the id of the author's entry at seq " +
                    std::to_string(seq - 1));
      }
      chain.lastSeq = seq;
      chain.lastId = state.id;
      entries_.emplace(std::move(key), state);
      return true;
    });
  }

  static size_t hashOf(ByteView v) {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(v.data()), v.size()));
  }

  // Follows an index row to its entry by a lookup, as `read` and replication do: a damaged
  // branch page can send a lookup astray while the walk along the leaves reads every entry well.
  void lookUp(const Row& row, const EntryState& state, const char* index) {
    auto v = t_.entries.get(txn_, row.entryKey);
    if (!v || hashOf(*v) != state.valueHash) {
      problem(ProblemKind::INDEX_MISMATCH, state.journal, row.id,
              std::string("entry ") + shortId(row.id) + " cannot be reached from the " + index +
                  " (a damaged page of the entry table)");
    }
  }

  void compareIds() {
    for (const Row& row : idRows_) {
      JournalId j = key32At(row.entryKey.data());
      auto it = entries_.find(row.entryKey);
      if (it == entries_.end()) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the ids index names entry " + shortId(row.id) + " at a place that holds no entry");
        continue;
      }
      lookUp(row, it->second, "ids index");
      ++it->second.idRows;
      if (it->second.id && *it->second.id != row.id) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the ids index names entry " + shortId(row.id) + " at the place of entry " + shortId(*it->second.id));
      }
    }
    for (const auto& [key, state] : entries_) {
      if (!state.id || state.idRows > 0) continue;
      problem(ProblemKind::INDEX_MISMATCH, state.journal, state.id,
              "entry " + shortId(*state.id) + " is missing from the ids index");
    }
  }

  void compareTimeline() {
    for (const Row& row : timelineRows_) {
      JournalId j = key32At(row.entryKey.data());
      auto it = entries_.find(row.entryKey);
      if (it == entries_.end()) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the timeline index lists entry " + shortId(row.id) + " but there is no entry at its place");
        continue;
      }
      lookUp(row, it->second, "timeline index");
      ++it->second.timelineRows;
      if (!it->second.id) continue;
      if (*it->second.id != row.id) {
        problem(
            ProblemKind::INDEX_MISMATCH, j, row.id,
            "the timeline index lists entry " + shortId(row.id) + " at the place of entry " + shortId(*it->second.id));
      } else if (it->second.timestampMs != row.timestampMs) {
        problem(ProblemKind::INDEX_MISMATCH, j, row.id,
                "the timeline index lists entry " + shortId(row.id) + " at another time than the entry's");
      }
    }
    for (const auto& [key, state] : entries_) {
      if (state.timelineRows == 1) continue;
      std::string name = state.id ? "entry " + shortId(*state.id)
                                  : entryName(std::nullopt, key32At(key.data() + 32), getU64(key.data() + 64));
      problem(ProblemKind::INDEX_MISMATCH, state.journal, state.id,
              state.timelineRows == 0 ? name + " is missing from the timeline index"
                                      : name + " has " + std::to_string(state.timelineRows) + " timeline rows");
    }
  }

  void walkHeads() {
    t_.heads.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      if (k.size() != HEAD_KEY_BYTES || v.size() != HEAD_VALUE_BYTES) {
        std::optional<JournalId> j;
        if (k.size() >= 32) j = key32At(k.data());
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "a head record (an author's last seq) is damaged");
        return true;
      }
      JournalId j = key32At(k.data());
      PublicKey author = key32At(k.data() + 32);
      uint64_t seq = getU64(v.data());
      EntryId id = key32At(v.data() + 8);
      auto it = authors_.find(Bytes(k.begin(), k.end()));
      if (it == authors_.end()) {
        problem(ProblemKind::HEAD_MISMATCH, j, id,
                "author " + shortId(author, 8) + " has a head (seq " + std::to_string(seq) + ") but no entries");
        return true;
      }
      AuthorState& chain = it->second;
      chain.headSeen = true;
      if (seq != chain.lastSeq) {
        problem(ProblemKind::HEAD_MISMATCH, j, id,
                "author " + shortId(author, 8) + "'s head says seq " + std::to_string(seq) +
                    " but the last entry is seq " + std::to_string(chain.lastSeq));
      } else if (chain.lastId && *chain.lastId != id) {
        problem(ProblemKind::HEAD_MISMATCH, j, id,
                "author " + shortId(author, 8) + "'s head names entry " + shortId(id) + " but the last entry is " +
                    shortId(*chain.lastId));
      }
      return true;
    });
    for (const auto& [key, chain] : authors_) {
      if (chain.headSeen) continue;
      problem(ProblemKind::HEAD_MISMATCH, key32At(key.data()), chain.lastId,
              "author " + shortId(key32At(key.data() + 32), 8) + " has entries but no head");
    }
  }

  void compareCounts(bool timelineRead) {
    for (const auto& [j, record] : journals_) {
      if (!record) continue;
      Tally tally = tallies_[j];
      if (timelineRead && tally.timelineRows != record->entryCount) {
        problem(ProblemKind::COUNT_MISMATCH, j, std::nullopt,
                "the journal's timeline index lists " + std::to_string(tally.timelineRows) +
                    " entries but its record counts " + std::to_string(record->entryCount) +
                    ", so 'kith read' refuses to show it");
      }
      if (tally.entries != record->entryCount) {
        problem(ProblemKind::COUNT_MISMATCH, j, std::nullopt,
                "the journal's record counts " + std::to_string(record->entryCount) + " entries but it holds " +
                    std::to_string(tally.entries));
      } else if (tally.allDecoded && tally.entries > 0 && tally.lastEntryMs != record->lastEntryMs) {
        problem(ProblemKind::COUNT_MISMATCH, j, std::nullopt,
                "the journal's record gives another time for its last entry than its entries do");
      }
    }
  }

  void walkMembers() {
    std::set<JournalId> withOwner;
    t_.members.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      std::optional<JournalId> j;
      if (k.size() >= 32) j = key32At(k.data());
      if (k.size() != 64) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "a member record has a damaged key");
        return true;
      }
      PublicKey key = key32At(k.data() + 32);
      try {
        Member m = decodeMember(key, v);
        if (m.role == Role::OWNER && journals_.contains(*j) && journals_[*j] && journals_[*j]->owner == key) {
          withOwner.insert(*j);
        }
      } catch (const Error&) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt,
                "the record of member " + shortId(key, 8) + " is damaged");
      }
      return true;
    });
    for (const auto& [j, record] : journals_) {
      if (record && !withOwner.contains(j)) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "the journal's owner is missing from its members");
      }
    }
  }

  void walkEpochKeys() {
    t_.epochs.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      std::optional<JournalId> j;
      if (k.size() >= 32) j = key32At(k.data());
      if (k.size() != EPOCH_KEY_ROW_BYTES || v.size() != EPOCH_KEY_RECORD_BYTES) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt, "an epoch key record is damaged");
        return true;
      }
      uint32_t epoch = getU32(k.data() + 32);
      if (options_.storageKey) {
        if (!epochKeyOpens(v, *j, epoch, *options_.storageKey)) {
          problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt,
                  "the key of epoch " + std::to_string(epoch) + " does not open with this identity",
                  "if this home's identity.key was replaced, put the right one back; otherwise " + HINT_CHECK_RESTORE);
        }
      }
      return true;
    });
  }

  void walkForks() {
    t_.forks.scan(txn_, prefix_, [&](ByteView k, ByteView v) {
      std::optional<JournalId> j;
      if (k.size() >= 32) j = key32At(k.data());
      bool ok = false;
      if (k.size() == FORK_KEY_BYTES) {
        try {
          Entry e = protocol::decodePackedEntry(v);  // verifies the signature
          ok = e.id == key32At(k.data() + ENTRY_KEY_BYTES) &&
               Bytes(k.begin(), k.begin() + ENTRY_KEY_BYTES) == entryKey(e.journal, e.author, e.seq);
        } catch (const EntryError&) {}
      }
      if (!ok) {
        problem(ProblemKind::RECORD_DAMAGED, j, std::nullopt,
                "a piece of fork evidence (a refused second entry) is damaged",
                "it is kept only as evidence and nothing reads it; " + HINT_CHECK_RESTORE + " to keep it");
      }
      return true;
    });
  }

  void walkInvites() {
    t_.invites.scan(txn_, {}, [&](ByteView k, ByteView v) {
      try {
        Invite i = decodeInvite(k, v);
        if (wanted(i.journal) && !journals_.contains(i.journal) && !options_.journal) {
          problem(ProblemKind::RECORD_DAMAGED, i.journal, std::nullopt,
                  "invite " + shortId(i.id, 8) + " is for a journal this home does not hold", HINT_CHECK_INVITES);
        }
      } catch (const Error&) {
        if (v.size() >= 32 && !wanted(key32At(v.data()))) return true;
        problem(ProblemKind::RECORD_DAMAGED, options_.journal, std::nullopt, "an invite record is damaged",
                HINT_CHECK_INVITES);
      }
      return true;
    });
  }
};

}  // namespace

CheckReport Store::checkIntegrity(const CheckOptions& options) const {
  ReadTxn txn(impl_->env);
  const Impl& s = *impl_;
  Checker checker(txn, {s.journals, s.entries, s.ids, s.heads, s.timeline, s.members, s.epochs, s.forks, s.invites},
                  options);
  return checker.run();
}

}  // namespace kith::store
