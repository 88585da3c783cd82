// `kith`: parses the command line, runs one command, and turns every failure into one line
// "kith: error: <what happened>; <what to do>" with exit code 1 (2 for usage errors).
#include <kj/exception.h>

#include <iostream>

#include "cli/commands.h"
#include "crypto/sodium.h"

namespace {

int fail(const std::string& what, const std::string& hint, int code) {
  std::cerr << "kith: error: " << what;
  if (!hint.empty()) std::cerr << "; " << hint;
  std::cerr << std::endl;
  return code;
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
  cli::addLocalCommands(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(e.what(), "run 'kith --help' for usage", 2);
  }

  try {
    crypto::init();
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
