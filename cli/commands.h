// The subcommands of `kith`. Each add* function registers its subcommands on the app; a parsed
// subcommand stores the work to do in `action`, which main runs after parsing succeeded.
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace kith::cli {

using Action = std::function<void(Context&)>;

// init, id, journal create|list, post, read, status
void addLocalCommands(CLI::App& app, Action& action);
// grant, members, follow, peers add|list, serve, sync
void addNetCommands(CLI::App& app, Action& action);
// comment, heart, revoke
void addCircleCommands(CLI::App& app, Action& action);
// check
void addCheckCommands(CLI::App& app, Action& action);
// backup, restore
void addBackupCommands(CLI::App& app, Action& action);

}  // namespace kith::cli
