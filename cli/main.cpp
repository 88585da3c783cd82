// `kith`: parses the command line, runs one command, and turns every failure into one line
// "kith: error: <what happened>; <what to do>" with exit code 1 (2 for usage errors).
#include <kj/exception.h>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/crash-guard.h"
#include "crypto/sodium.h"

namespace {

// Messages may quote what the user typed ("unknown command 'a<newline>b'") or what a peer sent
// ("the peer refused the connection: <its reason>"): errorLine writes them terminal-safe, on one
// line.
int fail(const std::string& what, const std::string& hint, int code) {
  std::cerr << kith::cli::errorLine(what, hint) << std::endl;
  return code;
}

// CLI11 2.1 says "A subcommand is required" both when the command is missing and when it is
// unknown ("kith bogus"); name the word it did not know instead. Returns nullopt for other errors.
std::optional<int> failMissingCommand(const CLI::App& app, const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::RequiredError*>(&e) == nullptr) return std::nullopt;
  // The deepest command that was recognised ("kith", "kith journal") and the words left over.
  const CLI::App* deepest = &app;
  std::string path = "kith";
  std::vector<std::string> leftover = app.remaining();
  for (;;) {
    auto subs = deepest->get_subcommands();
    if (subs.empty()) break;
    deepest = subs.front();
    path += " " + deepest->get_name();
    auto more = deepest->remaining();
    leftover.insert(leftover.end(), more.begin(), more.end());
  }
  if (deepest->get_require_subcommand_min() == 0) return std::nullopt;
  std::string hint = "run '" + path + " --help' for the list of commands";
  if (leftover.empty()) return fail("'" + path + "' needs a command", hint, 2);
  const std::string& word = leftover.front();
  if (!word.empty() && word[0] == '-') {
    return fail("unknown option '" + word + "'", "run '" + path + " --help' for usage", 2);
  }
  return fail("unknown command '" + word + "'", hint, 2);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kith;
  CLI::App app{"kith: a private journal for families, shared only with the people you choose"};
  app.name("kith");
  app.require_subcommand(1);
  app.fallthrough();
  cli::Options options;
  app.add_option("--home", options.home, "Home folder (default: $KITH_HOME, else ~/.local/share/kith)");
  app.add_flag("--json", options.json, "Print machine-readable JSON");
  app.add_flag("-v,--verbose", options.verbose, "Say more about what happens and about errors");
  cli::Action action;
  cli::addCommands(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) { return app.exit(e); } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (auto code = failMissingCommand(app, e)) return *code;
    return fail(e.what(), "run 'kith --help' for usage", 2);
  }

  try {
    crypto::init();
    cli::installCrashGuard();
    cli::Context ctx(options);
    action(ctx);
    return 0;
  } catch (const Error& e) {
    return fail(e.what(), e.hint(), e.kind() == ErrorKind::USAGE ? 2 : 1);
  } catch (const kj::Exception& e) {
    return fail(e.getDescription().cStr(), options.verbose ? "" : "run with --verbose for detail", 1);
  } catch (const std::bad_alloc&) {
    return fail("out of memory", "free some memory and try again", 1);
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what(), "please report this", 1);
  }
}
