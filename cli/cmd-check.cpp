// `kith check`: verifies the whole store (Store::checkIntegrity) and says what is wrong, one line
// per problem with what to do, then a summary; exit 1 when anything is wrong.
//
// The walk runs in a forked child process that sends its report back over a pipe as JSON, so that
// a page damaged in a way that makes LMDB itself fault (SIGSEGV, SIGBUS, its own abort) kills only
// the child: the parent reports that as one more problem instead of dying. The child opens the
// store itself; the parent never opens it (an LMDB environment must not cross a fork).
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/crash-guard.h"

namespace kith::cli {
namespace {

using nlohmann::json;

// The child's report is at most CHECK_PROBLEMS_MAX (1000) short lines; anything longer is not it.
constexpr size_t REPORT_BYTES_MAX = 16 * 1024 * 1024;
constexpr size_t READ_CHUNK_BYTES = 64 * 1024;

json problemJson(const store::StoreProblem& p) {
  return {{"kind", store::problemKindName(p.kind)},
          {"journal", p.journal ? json(toHex(*p.journal)) : json(nullptr)},
          {"entry", p.entry ? json(toHex(*p.entry)) : json(nullptr)},
          {"text", p.text},
          {"hint", p.hint}};
}

json reportJson(const store::CheckReport& r) {
  json problems = json::array();
  for (const auto& p : r.problems) problems.push_back(problemJson(p));
  return {{"journals", r.journals}, {"entries", r.entries}, {"problems", problems}};
}

// A report of one problem that stopped the walk itself (it has no counts).
json problemOnly(const std::string& text, const std::string& hint) {
  return {{"journals", nullptr},
          {"entries", nullptr},
          {"problems", json::array({{{"kind", store::problemKindName(store::ProblemKind::STORE_UNREADABLE)},
                                     {"journal", nullptr},
                                     {"entry", nullptr},
                                     {"text", text},
                                     {"hint", hint}}})}};
}

void writeAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the parent went away; nothing to tell
    done += static_cast<size_t>(n);
  }
}

// In the child: opens the store, walks it, and writes {"report": ...} or {"error": ...}.
[[noreturn]] void runChild(Context& ctx, int fd, const std::optional<std::string>& journalArg,
                           std::optional<ByteView> storageKey) {
  // Die of the signal itself (the parent names it), and leave no core file behind.
  resetCrashActions();
  struct rlimit noCore {
    0, 0
  };
  ::setrlimit(RLIMIT_CORE, &noCore);
  json out;
  try {
    store::Store* s = nullptr;
    try {
      s = &ctx.store();
    } catch (const Error& e) {
      out = {{"report", problemOnly(std::string("the store cannot be opened: ") + e.what(), HINT_RESTORE_KEY)}};
    }
    if (s != nullptr) {
      store::CheckOptions options;
      if (journalArg) options.journal = ctx.journal(journalArg);
      options.storageKey = storageKey;
      out = {{"report", reportJson(s->checkIntegrity(options))}};
    }
  } catch (const Error& e) {
    out = {{"error", {{"kind", static_cast<int>(e.kind())}, {"what", e.what()}, {"hint", e.hint()}}}};
  } catch (const std::exception& e) {
    out = {{"error",
            {{"kind", static_cast<int>(ErrorKind::IO)},
             {"what", std::string("the check failed: ") + e.what()},
             {"hint", HINT_RESTORE_KEY}}}};
  }
  writeAll(fd, out.dump());
  ::_exit(0);
}

std::string signalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Runs the walk in a child; returns the report as reportJson gives it (or throws the Error the
// child met, such as an unknown --journal).
json checkInChild(Context& ctx, const std::optional<std::string>& journalArg, std::optional<ByteView> storageKey) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(ErrorKind::IO, std::string("cannot start the check: ") + std::strerror(errno));
  }
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(ErrorKind::IO, std::string("cannot start the check: ") + std::strerror(err));
  }
  if (pid == 0) {
    ::close(fds[0]);
    runChild(ctx, fds[1], journalArg, storageKey);
  }
  ::close(fds[1]);
  std::string bytes;
  char buf[READ_CHUNK_BYTES];
  bool tooLong = false;
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(buf, static_cast<size_t>(n));
    if (bytes.size() > REPORT_BYTES_MAX) {
      tooLong = true;
      ::kill(pid, SIGKILL);
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}

  if (WIFSIGNALED(status) && !tooLong) {
    return problemOnly("the store is damaged in a way that makes LMDB crash (" + signalName(WTERMSIG(status)) +
                           " while reading it); commands that read the damaged part stop with an error",
                       HINT_RESTORE_KEY);
  }
  json out = json::parse(bytes, nullptr, false);
  if (tooLong || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || out.is_discarded() || !out.is_object()) {
    std::string how = WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status)) : "no report";
    return problemOnly("the check stopped without finishing (" + how + ")", HINT_RESTORE_KEY);
  }
  if (out.contains("error")) {
    const json& e = out["error"];
    throw Error(static_cast<ErrorKind>(e["kind"].get<int>()), e["what"].get<std::string>(),
                e["hint"].get<std::string>());
  }
  return out["report"];
}

void cmdCheck(Context& ctx, const std::optional<std::string>& journalArg) {
  // A home without an identity says "run kith init" before anything forks.
  crypto::KeyFileInfo info = ctx.keyInfo();
  // The epoch keys are checked too when the identity opens without asking.
  std::optional<ByteView> storageKey;
  if (!info.sealed || std::getenv("KITH_PASSPHRASE") != nullptr) storageKey = ctx.unlock().storageKey.view();

  json report = checkInChild(ctx, journalArg, storageKey);
  const json& problems = report["problems"];
  bool walked = !report["journals"].is_null();
  std::ostringstream text;
  for (const auto& p : problems) {
    if (!p["journal"].is_null()) text << "journal " << p["journal"].get<std::string>().substr(0, 16) << ": ";
    text << p["text"].get<std::string>() << "; " << p["hint"].get<std::string>() << "\n";
  }
  std::string checked = walked ? countOf(report["journals"].get<uint64_t>(), "journal", "journals") + ", " +
                                     countOf(report["entries"].get<uint64_t>(), "entry", "entries") + " checked"
                               : std::string("the check could not walk it");
  if (problems.empty()) text << "The store is healthy: " << checked;
  ctx.print(problems, text.str());
  if (!problems.empty()) {
    throw Error(ErrorKind::CORRUPT,
                "the store has " + countOf(problems.size(), "problem", "problems") + " (" + checked + ")",
                "do what each line says; the journals' other members hold copies of their entries");
  }
}

}  // namespace

void addCheckCommands(Commands& commands) {
  commands.add<std::optional<std::string>>(
      "check", "Verify every entry, index and count in this home's store",
      [](CLI::App& cmd, std::optional<std::string>& journal) {
        addJournalOption(cmd, journal, "Check only this journal (an id or a unique prefix)");
      },
      cmdCheck);
}

}  // namespace kith::cli
