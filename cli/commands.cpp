#include "cli/commands.h"

namespace kith::cli {

Commands Commands::group(const std::string& name, const std::string& description) {
  CLI::App* cmd = app_.add_subcommand(name, description);
  cmd->require_subcommand(1);
  return Commands(*cmd, action_);
}

void addJournalOption(CLI::App& cmd, std::optional<std::string>& journal, const std::string& description) {
  cmd.add_option("--journal", journal, description);
}

void addCommands(CLI::App& app, Action& action) {
  Commands commands(app, action);
  addIdentityCommands(commands);
  addJournalCommands(commands);
  addPostReadCommands(commands);
  addHelpCommands(commands);
  addStatusCommands(commands);
  addInviteCommands(commands);
  addMemberCommands(commands);
  addPeerCommands(commands);
  addSyncServeCommands(commands);
  addWebCommands(commands);
  addRelayCommands(commands);
  addCheckCommands(commands);
  addBackupCommands(commands);
}

}  // namespace kith::cli
