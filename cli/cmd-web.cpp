// `kith web`: a one-time sign-in link to the family's page that the running `kith serve` serves
// (web/server.h, specs/web-api.md "Signing in"), printed and, on a desktop, opened.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "base/clock.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "web/guard.h"
#include "web/limits.h"

extern char** environ;

namespace kith::cli {
namespace {

// Opens `url` in the desktop's browser (xdg-open), without waiting for it; false when there is no
// desktop or no xdg-open.
bool openInBrowser(const std::string& url) {
  if (std::getenv("DISPLAY") == nullptr && std::getenv("WAYLAND_DISPLAY") == nullptr) return false;
  if (::access("/usr/bin/xdg-open", X_OK) != 0) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::string prog = "/usr/bin/xdg-open", arg = url;
  char* argv[] = {prog.data(), arg.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0;
}

void cmdWeb(Context& ctx, bool noOpen) {
  ctx.keyInfo();  // a home with an identity
  if (!servingAddress(ctx.home())) {
    throw Error(ErrorKind::NOT_FOUND, "your kith node is not running, and the page is part of it",
                "start it with 'kith serve' (leave it running), then run 'kith web' again");
  }
  auto address = webAddress(ctx.home());
  if (!address) {
    throw Error(ErrorKind::NOT_FOUND, "the running node serves no page (it was started with --no-web)",
                "stop it and start 'kith serve' without --no-web");
  }
  int64_t now = nowMs();
  std::string token = web::LoginTokens(webLoginsPath(ctx.home())).issue(now);
  std::string url = "http://" + *address + "/login#" + token;
  bool opened = !noOpen && !ctx.options().json && ::isatty(STDOUT_FILENO) != 0 && openInBrowser(url);
  ctx.print({{"url", url}, {"expires", isoTime(now + web::WEB_LOGIN_TTL_MS)}, {"opened", opened}},
            std::string(opened ? "Opening your family's page in the browser. If it does not open, open this link:\n"
                               : "Open this link in a browser on this computer to see your family's page:\n") +
                "  " + url + "\nThe link works once, within " + std::to_string(web::WEB_LOGIN_TTL_MS / 60000) +
                " minutes. Keep it to yourself: it signs in as you.");
}

}  // namespace

void addWebCommands(Commands& commands) {
  commands.add<bool>(
      "web", "Open the family's web page (prints a one-time sign-in link)",
      [](CLI::App& cmd, bool& noOpen) { cmd.add_flag("--no-open", noOpen, "Only print the link"); }, cmdWeb);
}

}  // namespace kith::cli
