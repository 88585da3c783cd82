// What the networked commands (sync, follow, serve, accept) share: the event loop, the log, the
// config and the replicator, built and torn down in the one order that works, and one sync round
// with a list of peers.
//
// Threading: the main thread only; the loop runs inside the calls that wait on it.
// Caveats:
// - A Runtime unlocks the identity (it may ask for the passphrase) and opens the store.
// - Members are destroyed in reverse order: the replicator before the loop it runs on.
#pragma once
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/config.h"
#include "cli/context.h"
#include "node/node.h"
#include "node/uv/uv-event-port.h"

namespace kith::cli {

// The one log sink: stderr (or `out`), debug lines with --verbose. Every line is terminal-safe and
// stays one line (terminalSafe with Newlines::ESCAPE): log lines quote what peers sent (a refusal's
// reason, a remote exception), which must not reach the terminal raw.
std::shared_ptr<spdlog::logger> makeLogger(bool verbose, std::FILE* out = stderr);

struct Runtime {
  node::UvIoContext io;
  std::shared_ptr<spdlog::logger> logger;
  Config config;
  std::unique_ptr<node::Replicator> replicator;

  explicit Runtime(Context& ctx);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
};

struct SyncSummary {
  size_t peersReached = 0;
  uint64_t received = 0;
  uint64_t sent = 0;
  // "<peer> (<address>): <why>", one per peer not reached; terminal-safe on one line (the why may
  // be the peer's own words).
  std::vector<std::string> failures;
};

// Connects to each peer in turn and runs one sync round with it, trying each up to `attempts`
// times. Progress goes to stderr unless `json`.
SyncSummary syncWith(Runtime& rt, const std::vector<node::PeerAddress>& peers, unsigned attempts, bool json);

}  // namespace kith::cli
