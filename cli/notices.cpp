#include "cli/notices.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/context.h"
#include "store/timeline.h"

extern char** environ;

namespace kith::cli {

using protocol::Kind;

NotifySettings parseNotifySettings(const nlohmann::json& config) {
  NotifySettings s;
  if (!config.is_object() || !config.contains("notify")) return s;
  const auto& n = config["notify"];
  auto bad = [](const std::string& what) {
    return Error(ErrorKind::CORRUPT, "config.json's \"notify\" " + what,
                 "write it as \"notify\": {\"command\": \"notify-send kith \\\"$KITH_AUTHOR_NAME\\\"\", "
                 "\"include_text\": false}, or remove it");
  };
  if (!n.is_object()) throw bad("is not an object");
  if (n.contains("command")) {
    if (!n["command"].is_string()) throw bad("command is not a string");
    s.command = n["command"].get<std::string>();
    if (s.command.size() > NOTIFY_COMMAND_BYTES_MAX) throw bad("command is too long");
    if (s.command.find('\0') != std::string::npos) throw bad("command holds a NUL byte");
  }
  if (n.contains("include_text")) {
    if (!n["include_text"].is_boolean()) throw bad("include_text is not true or false");
    s.includeText = n["include_text"].get<bool>();
  }
  return s;
}

ArrivalNotices::ArrivalNotices(node::UvEventPort& port, node::Replicator& replicator, const store::Keyring& keyring,
                               spdlog::logger& log, NotifySettings settings)
    : port_(port), replicator_(replicator), keyring_(keyring), log_(log), settings_(std::move(settings)) {
  for (const auto& j : replicator_.store().journals()) seen_[j.id] = replicator_.store().versionVector(j.id);
  replicator_.addListener(this);
}

ArrivalNotices::~ArrivalNotices() { replicator_.removeListener(this); }

void ArrivalNotices::storeChanged() {
  if (scheduled_) return;
  scheduled_ = true;
  tasks_.add(port_.getTimer().afterDelay(NOTICE_DELAY_MS * kj::MILLISECONDS).then([this]() {
    scheduled_ = false;
    try {
      scan();
    } catch (const std::exception& e) {
      log_.warn("could not look for new entries: {}", terminalSafe(e.what(), Newlines::ESCAPE));
    }
  }));
}

std::string ArrivalNotices::nameOf(const store::JournalId& journal, const crypto::PublicKey& author) {
  auto cached = names_.find({journal, author});
  if (cached != names_.end()) return cached->second;
  std::string name =
      store::publishedName(replicator_.store(), keyring_, journal, author).value_or(toHex(author).substr(0, 8));
  names_[{journal, author}] = name;
  return name;
}

void ArrivalNotices::scan() {
  const store::Store& s = replicator_.store();
  const crypto::PublicKey& me = keyring_.identity.publicKey();
  size_t lines = 0, commands = 0, more = 0;
  for (const auto& info : s.journals()) {
    protocol::VersionVector now = s.versionVector(info.id);
    auto seen = seen_.find(info.id);
    if (seen == seen_.end()) {
      auto title = store::journalTitle(s, keyring_, info.id);
      log_.info("now receiving \"{}\" ({} entries so far)",
                title ? terminalSafe(*title, Newlines::ESCAPE) : toHex(info.id).substr(0, 16), info.entryCount);
      seen_[info.id] = std::move(now);
      continue;
    }
    std::optional<std::string> title;
    for (const auto& [author, head] : now) {
      uint64_t from = seen->second.count(author) > 0 ? seen->second[author] + 1 : 1;
      if (head < from || author == me) continue;
      for (; from <= head;) {
        auto batch = s.range(info.id, author, from, 256);
        if (batch.empty()) break;
        for (const auto& e : batch) {
          from = e.seq + 1;
          auto key = s.epochKey(info.id, e.epoch, keyring_.storageKey);
          std::optional<protocol::Body> body;
          try {
            if (key) body = protocol::openBody(e, key->view());
          } catch (const protocol::EntryError&) {}
          if (!body) continue;
          if (body->kind == Kind::PROFILE) names_.erase({info.id, author});
          const char* what = body->kind == Kind::UPDATE    ? "New update"
                             : body->kind == Kind::COMMENT ? "New comment"
                             : body->kind == Kind::WISH    ? "New well-wish"
                             : body->kind == Kind::ASK     ? "New help request"
                             : body->kind == Kind::CLAIM   ? "An offer of help"
                                                           : nullptr;
          if (what == nullptr) continue;
          if (!title) {
            auto t = store::journalTitle(s, keyring_, info.id);
            title = t ? *t : toHex(info.id).substr(0, 16);
          }
          std::string name = nameOf(info.id, author);
          if (lines < NOTICES_PER_SCAN_MAX) {
            log_.info("{} from {} in {}", what, terminalSafe(name, Newlines::ESCAPE),
                      terminalSafe(*title, Newlines::ESCAPE));
            ++lines;
            ++logged_;
          } else {
            ++more;
          }
          if (!settings_.command.empty() && commands < NOTIFY_COMMANDS_PER_SCAN_MAX) {
            std::map<std::string, std::string> env{{"KITH_KIND", protocol::kindName(body->kind)},
                                                   {"KITH_JOURNAL_TITLE", *title},
                                                   {"KITH_JOURNAL", toHex(info.id)},
                                                   {"KITH_AUTHOR_NAME", name},
                                                   {"KITH_ENTRY_ID", toHex(e.id)}};
            if (settings_.includeText) env["KITH_TEXT"] = body->text;
            runCommand(env);
            ++commands;
          }
        }
      }
    }
    seen->second = std::move(now);
  }
  if (more > 0) log_.info("and {} more new entries", more);
}

void ArrivalNotices::runCommand(const std::map<std::string, std::string>& vars) {
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> envStrings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view v(*e);
    bool replaced = false;
    for (const auto& [k, _] : vars)
      replaced = replaced || (v.size() > k.size() && v.substr(0, k.size()) == k && v[k.size()] == '=');
    if (!replaced) envStrings.emplace_back(v);
  }
  for (const auto& [k, v] : vars) {
    std::string value = v;
    for (char& c : value) {
      if (c == '\0') c = ' ';
    }
    envStrings.push_back(k + "=" + value);
  }
  std::vector<char*> envp;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string shell = "/bin/sh", dashC = "-c", command = settings_.command;
  char* argv[] = {shell.data(), dashC.data(), command.data(), nullptr};
  pid_t child = ::fork();
  if (child < 0) {
    log_.warn("could not run the notify command: fork failed");
    return;
  }
  if (child == 0) {
    // The grandchild runs the command, detached; the child exits at once so that nothing waits.
    pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    ::setsid();
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    // Not the node's sockets or store: a command that runs long must not hold them open.
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) log_.warn("could not run the notify command");
}

}  // namespace kith::cli
