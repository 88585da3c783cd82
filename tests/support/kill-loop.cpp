#include "tests/support/kill-loop.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>

namespace kith::test {
namespace {

using Clock = std::chrono::steady_clock;

// How long the loop waits when nothing happened in a turn: short against a child's life.
constexpr int IDLE_WAIT_MS = 1;

struct Running {
  KillTarget* target = nullptr;
  size_t spawn = 0;
  std::vector<std::string> argv;
  std::string outputPath;
  std::unique_ptr<Process> process;
  std::optional<Clock::time_point> killAt;
  bool killSent = false;
};

}  // namespace

KillLoop::KillLoop(uint64_t seed, std::string scratchDir) : seed_(seed), scratchDir_(std::move(scratchDir)) {}

KillLoopFigures KillLoop::run(const std::vector<KillTarget*>& targets, size_t spawnsMax) {
  std::mt19937_64 rng(seed_);
  auto start = Clock::now();
  KillLoopFigures figures;
  std::vector<Running> running;
  auto goalsMet = [&targets] {
    return std::all_of(targets.begin(), targets.end(), [](const KillTarget* t) { return t->kills >= t->killsWanted; });
  };
  auto runningOf = [&running](const KillTarget* t) {
    return static_cast<size_t>(
        std::count_if(running.begin(), running.end(), [t](const Running& r) { return r.target == t; }));
  };

  while (!running.empty() || (!goalsMet() && figures.spawns < spawnsMax)) {
    bool progressed = false;
    for (KillTarget* t : targets) {
      while (!goalsMet() && figures.spawns < spawnsMax && runningOf(t) < t->atOnce) {
        Running r;
        r.target = t;
        r.spawn = t->spawns++;
        r.argv = t->argv(r.spawn);
        r.outputPath = scratchDir_ + "/" + t->name + "-" + std::to_string(r.spawn) + ".out";
        RunOptions options = t->options;
        options.outputPath = r.outputPath;
        options.dieWithParent = true;
        std::bernoulli_distribution kill(t->killChance);
        std::uniform_int_distribution<int64_t> delayUs(0, t->killWithin.count());
        bool willKill = kill(rng);
        auto delay = std::chrono::microseconds(delayUs(rng));
        r.process = std::make_unique<Process>(r.argv, options);
        if (willKill) r.killAt = Clock::now() + delay;
        ++figures.spawns;
        running.push_back(std::move(r));
        progressed = true;
      }
    }
    auto now = Clock::now();
    for (auto& r : running) {
      if (r.killAt && !r.killSent && now >= *r.killAt) {
        ::kill(r.process->pid(), SIGKILL);
        r.killSent = true;
        progressed = true;
      }
    }
    for (auto it = running.begin(); it != running.end();) {
      if (!it->process->tryWait()) {
        ++it;
        continue;
      }
      ChildEnd end;
      end.spawn = it->spawn;
      end.signal = it->process->termSignal();
      end.exitCode = end.signal == 0 ? *it->process->tryWait() : -1;
      // Ours only if we sent it: a SIGKILL from anywhere else (the OOM killer) is a failure.
      end.killedByUs = it->killSent && end.signal == SIGKILL;
      if (end.killedByUs) {
        ++it->target->kills;
        ++figures.kills;
      }
      end.output = it->process->output();
      end.argv = it->argv;
      it->target->ends.push_back(std::move(end));
      ::unlink(it->outputPath.c_str());
      it = running.erase(it);
      progressed = true;
    }
    if (!progressed) ::poll(nullptr, 0, IDLE_WAIT_MS);
  }
  figures.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return figures;
}

size_t countFromEnv(const char* name, size_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (*end != '\0' || text[0] == '-') throw std::runtime_error(std::string(name) + " is not a count: " + text);
  return static_cast<size_t>(value);
}

}  // namespace kith::test
