// A seeded SIGKILL loop over child processes (the `kith` binary, in crash tests): several kinds
// of child run side by side, each kind a few at once, and each child is killed with SIGKILL at a
// random moment after its start, or left to finish, as the seed decides. The loop hands back how
// every child ended; the test checks that on its own thread (nothing here uses Catch, so that any
// test or benchmark can link it).
//
//   KillTarget posts;
//   posts.name = "post";
//   posts.atOnce = 2;                      // two `kith post` running at any time
//   posts.killsWanted = 40;
//   posts.killChance = 0.6;                // the others run to their end
//   posts.killWithin = onePost * 5 / 4;    // a kill lands anywhere in the child's usual life
//   posts.argv = [&](size_t i) { return kithArgv(home, {"--json", "post", "post " + std::to_string(i)}); };
//   KillLoop loop(seed, scratchDir);
//   KillLoopFigures figures = loop.run({&posts, &receivers}, SPAWNS_MAX);
//   for (const ChildEnd& end : posts.ends) ...   // how each ended, and what it printed
//
// Caveats:
// - Children are reaped by pid (never waitpid(-1)), so other children of the test (a `kith serve`
//   it keeps running) are left alone.
// - Each child's stdout and stderr go to one file in the scratch folder, read back when it ends
//   and then removed: a child that logs a lot never blocks on a full pipe.
// - Children die with the test (PR_SET_PDEATHSIG), and any still running when run() throws are
//   killed.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace kith::test {

// How one child ended.
struct ChildEnd {
  size_t spawn = 0;         // its index among its target's spawns
  bool killedByUs = false;  // it died of the SIGKILL the loop sent
  int exitCode = -1;        // when it exited by itself (-1 otherwise)
  int signal = 0;           // the signal it died of (SIGKILL when killedByUs), 0 when it exited
  std::string output;       // its stdout and stderr, interleaved
  std::vector<std::string> argv;
};

// One kind of child.
struct KillTarget {
  std::string name;                         // for messages: "post", "receiver"
  size_t atOnce = 1;                        // children of this kind running at once
  size_t killsWanted = 0;                   // the loop spawns until every target has this many kills
  double killChance = 1.0;                  // of a child being given a moment to die at all
  std::chrono::microseconds killWithin{0};  // that moment: uniform in [0, killWithin] after its start
  std::function<std::vector<std::string>(size_t spawn)> argv;
  RunOptions options;  // environment; outputPath and dieWithParent are set by the loop

  // Filled in by the loop.
  size_t spawns = 0;
  size_t kills = 0;            // children that died of our SIGKILL
  std::vector<ChildEnd> ends;  // every child, in the order they ended
};

struct KillLoopFigures {
  size_t spawns = 0;
  size_t kills = 0;
  std::chrono::milliseconds elapsed{0};
};

class KillLoop {
public:
  // `scratchDir` must exist; the children's output files live there while they run.
  KillLoop(uint64_t seed, std::string scratchDir);

  // Spawns children of every target (up to its atOnce) until each target has had killsWanted
  // kills or `spawnsMax` children were spawned in all, then lets the last ones end (killed at
  // their moment, or finishing). Throws std::runtime_error when a child cannot be started.
  KillLoopFigures run(const std::vector<KillTarget*>& targets, size_t spawnsMax);

private:
  uint64_t seed_;
  std::string scratchDir_;
};

// Reads a non-negative count from the environment (for a longer run from a script), else
// `fallback`. Throws std::runtime_error when the variable is set but not a number.
size_t countFromEnv(const char* name, size_t fallback);

}  // namespace kith::test
