// Notices for `kith serve`: one log line per entry that arrives from someone else ("New update from
// Ann in Mum's journey"), and, when the household configured one, a command run for each arrival
// (config.json: "notify": {"command": "...", "include_text": false}). The command gets the kind,
// the journal's title and id, the author's name and the entry's id in its environment
// (KITH_KIND, KITH_JOURNAL_TITLE, KITH_JOURNAL, KITH_AUTHOR_NAME, KITH_ENTRY_ID), and the text
// (KITH_TEXT) only when "include_text" is true: what it does with them leaves this node.
//
// Threading: the loop thread of `kith serve`.
// Caveats:
// - What arrives is found by comparing each journal's version vector with the one seen last, so a
//   burst of entries gives one scan; at most NOTICES_PER_SCAN_MAX lines and
//   NOTIFY_COMMANDS_PER_SCAN_MAX commands per scan, the rest summed up in one line.
// - The command runs detached through /bin/sh -c (never waited for, never blocking the node); a
//   command that cannot start is logged.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "node/replicator.h"
#include "node/uv/uv-event-port.h"
#include "store/journal.h"

namespace kith::cli {

constexpr size_t NOTICES_PER_SCAN_MAX = 50;
constexpr size_t NOTIFY_COMMANDS_PER_SCAN_MAX = 10;
constexpr uint64_t NOTICE_DELAY_MS = 200;
constexpr size_t NOTIFY_COMMAND_BYTES_MAX = 4096;

struct NotifySettings {
  std::string command;  // empty: none
  bool includeText = false;
};
// Reads "notify" from config.json's JSON; throws Error(CORRUPT) saying what is wrong.
NotifySettings parseNotifySettings(const nlohmann::json& config);

class ArrivalNotices final : public node::ChangeListener {
public:
  ArrivalNotices(node::UvEventPort& port, node::Replicator& replicator, const store::Keyring& keyring,
                 spdlog::logger& log, NotifySettings settings);
  ~ArrivalNotices();

  void storeChanged() override;
  // Looks for new entries now (storeChanged does it after NOTICE_DELAY_MS).
  void scan();
  uint64_t noticesLogged() const { return logged_; }

private:
  std::string nameOf(const store::JournalId& journal, const crypto::PublicKey& author);
  void runCommand(const std::map<std::string, std::string>& env);

  node::UvEventPort& port_;
  node::Replicator& replicator_;
  store::Keyring keyring_;
  spdlog::logger& log_;
  NotifySettings settings_;
  std::map<store::JournalId, protocol::VersionVector> seen_;
  std::map<std::pair<store::JournalId, crypto::PublicKey>, std::string> names_;
  bool scheduled_ = false;
  uint64_t logged_ = 0;
  struct Ignore final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}
  } ignore_;
  kj::TaskSet tasks_{ignore_};
};

}  // namespace kith::cli
