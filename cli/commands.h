// The subcommands of `kith`, one file per family (cli/cmd-*.cpp). A parsed subcommand stores the
// work to do in an Action, which main runs after parsing succeeded.
//
// A command is declared with Commands::add: its options and arguments live in one struct that the
// `declare` function binds, and `run` does the work with them:
//
//   struct PostArgs {
//     std::optional<std::string> journal;
//     std::string text;
//   };
//   commands.add<PostArgs>(
//       "post", "Post an update to a journal",
//       [](CLI::App& cmd, PostArgs& a) {
//         addJournalOption(cmd, a.journal);
//         cmd.add_option("TEXT", a.text, "The update's text")->required();
//       },
//       [](Context& ctx, const PostArgs& a) { cmdPost(ctx, a.journal, a.text); });
//
// Caveats: the order in which the families are added is the order `kith --help` lists them.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace kith::cli {

using Action = std::function<void(Context&)>;

// Where commands are declared: the app (or a command that has subcommands of its own) and the
// action main runs.
class Commands {
public:
  Commands(CLI::App& app, Action& action) : app_(app), action_(action) {}

  // Declares the command `name`: `declare(cmd, args)` binds its options to one `Args` value, and
  // when the command line names it (and none of its own subcommands), `run(ctx, args)` becomes the
  // action. Returns the command, for subcommands of its own (see `under`).
  template <typename Args, typename Declare, typename Run>
  CLI::App& add(const std::string& name, const std::string& description, Declare declare, Run run) {
    CLI::App* cmd = app_.add_subcommand(name, description);
    auto args = std::make_shared<Args>();
    declare(*cmd, *args);
    Action& action = action_;
    cmd->callback([&action, cmd, args, run] {
      // CLI11 calls a command's callback after its subcommand's: that one has set the action.
      if (!cmd->get_subcommands().empty()) return;
      action = [args, run](Context& ctx) { run(ctx, *args); };
    });
    return *cmd;
  }

  // A command without options or arguments: `run(ctx)`.
  template <typename Run>
  CLI::App& add(const std::string& name, const std::string& description, Run run) {
    struct NoArgs {};
    return add<NoArgs>(
        name, description, [](CLI::App&, NoArgs&) {}, [run](Context& ctx, const NoArgs&) { run(ctx); });
  }

  // A command that only groups subcommands ("kith journal create"): one of them is required.
  Commands group(const std::string& name, const std::string& description);
  // The subcommands of a command that add declared ("kith invite list").
  Commands under(CLI::App& command) { return Commands(command, action_); }

private:
  CLI::App& app_;
  Action& action_;
};

// The --journal option of the commands about one journal.
void addJournalOption(
    CLI::App& cmd, std::optional<std::string>& journal,
    const std::string& description = "Journal id (or a unique prefix) or title; optional with one journal");

// Every command of `kith`, family by family.
void addCommands(CLI::App& app, Action& action);

// The families, in the order --help lists them (cli/cmd-<family>.cpp).
void addIdentityCommands(Commands& commands);
void addJournalCommands(Commands& commands);
void addPostReadCommands(Commands& commands);
void addHelpCommands(Commands& commands);
void addStatusCommands(Commands& commands);
void addInviteCommands(Commands& commands);
void addMemberCommands(Commands& commands);
void addPeerCommands(Commands& commands);
void addSyncServeCommands(Commands& commands);
void addWebCommands(Commands& commands);
// `kith relay ...`: a household's use of relays (cli/cmd-relay.cpp), and running one
// (addRelayOperatorCommands, cli/cmd-relay-operator.cpp), under one group.
void addRelayCommands(Commands& commands);
void addRelayOperatorCommands(Commands& relay);
void addCheckCommands(Commands& commands);
void addBackupCommands(Commands& commands);

}  // namespace kith::cli
