#include "cli/runtime.h"

#include <spdlog/sinks/base_sink.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string_view>

namespace kith::cli {
namespace {

// Between attempts to reach one peer: this, doubled per failed attempt.
constexpr unsigned SYNC_RETRY_DELAY_MS = 500;
// At most one progress update per this long, per peer: redrawn in place on a terminal, a line
// each SYNC_PROGRESS_LINE_EVERY otherwise (a log file).
constexpr auto SYNC_PROGRESS_EVERY = std::chrono::milliseconds(250);
constexpr auto SYNC_PROGRESS_LINE_EVERY = std::chrono::seconds(5);

// "12,345": digits grouped for people.
std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// "journal 1a2b3c4d from 5e6f7a8b: 12,345 of 100,000 entries (12%), 7.1 MB, 8,900 entries/s,
// about 10 s left".
std::string progressLine(const node::SyncProgress& p, const std::string& label, double seconds) {
  std::string line = "sync: journal " + toHex(p.journal).substr(0, 8) + " from " + label + ": " + grouped(p.received) +
                     " of " + grouped(p.expected) + " entries";
  if (p.expected > 0) line += " (" + std::to_string(std::min<uint64_t>(100, p.received * 100 / p.expected)) + "%)";
  char mb[32];
  std::snprintf(mb, sizeof mb, ", %.1f MB", static_cast<double>(p.receivedBytes) / 1e6);
  line += mb;
  if (seconds > 0.5 && p.received > 0) {
    double rate = static_cast<double>(p.received) / seconds;
    line += ", " + grouped(static_cast<uint64_t>(rate)) + " entries/s";
    if (p.expected > p.received) {
      auto left = static_cast<uint64_t>(static_cast<double>(p.expected - p.received) / rate + 0.5);
      line += left >= 120 ? ", about " + std::to_string((left + 30) / 60) + " min left"
                          : ", about " + std::to_string(std::max<uint64_t>(1, left)) + " s left";
    }
  }
  return line;
}

// Writes each formatted line to a FILE, terminal-safe and on one line.
class TerminalSafeSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit TerminalSafeSink(std::FILE* out) : out_(out) {}

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string_view line(formatted.data(), formatted.size());
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    std::string safe = terminalSafe(line, Newlines::ESCAPE);
    safe += '\n';
    std::fwrite(safe.data(), 1, safe.size(), out_);
  }
  void flush_() override { std::fflush(out_); }

private:
  std::FILE* out_;
};

}  // namespace

std::shared_ptr<spdlog::logger> makeLogger(bool verbose, std::FILE* out) {
  auto sink = std::make_shared<TerminalSafeSink>(out);
  auto logger = std::make_shared<spdlog::logger>("kith", sink);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

Runtime::Runtime(Context& ctx) : logger(makeLogger(ctx.options().verbose)), config(Config::load(ctx.home())) {
  const Unlocked& me = ctx.unlock();
  // The replicator asks the live config: `kith accept` adds a follow while the runtime exists.
  replicator = std::make_unique<node::Replicator>(
      ctx.store(), me.identity, me.storageKey.view(), *logger,
      [this](const protocol::JournalId& j, const crypto::PublicKey& peer) { return config.followsFrom(j, peer); });
}

SyncSummary syncWith(Runtime& rt, const std::vector<node::PeerAddress>& peers, unsigned attempts, bool json) {
  SyncSummary summary;
  auto& ws = rt.io.getWaitScope();
  auto& port = rt.io.getPort();
  for (const auto& peer : peers) {
    std::string label = toHex(peer.key).substr(0, 8);
    std::string where = node::formatHostPort(peer.host, peer.port);
    for (unsigned attempt = 1; attempt <= attempts; ++attempt) {
      auto started = std::chrono::steady_clock::now();
      auto lastPrint = started;
      bool terminal = isatty(STDERR_FILENO) == 1;
      bool drawn = false;  // a progress line is on the terminal, without its newline
      auto progress = [&](const node::SyncProgress& p) {
        auto now = std::chrono::steady_clock::now();
        if (json || now - lastPrint < (terminal ? SYNC_PROGRESS_EVERY : SYNC_PROGRESS_LINE_EVERY)) return;
        lastPrint = now;
        std::string line = progressLine(p, label, std::chrono::duration<double>(now - started).count());
        if (terminal) {
          std::cerr << "\r\033[K" << line << std::flush;
          drawn = true;
        } else {
          std::cerr << line << std::endl;
        }
      };
      // Ends the progress line on the terminal before anything else is printed.
      auto endProgress = [&]() {
        if (drawn) std::cerr << "\r\033[K" << std::flush;
        drawn = false;
      };
      try {
        auto results =
            node::connect(port, peer.host.c_str(), peer.port)
                .then([&](kj::Own<node::UvStream> stream) {
                  return node::secureInitiate(kj::mv(stream), rt.replicator->identity(), peer.key, port.getTimer());
                })
                .then([&](node::SecureConnection conn) {
                  auto session = kj::heap<node::PeerSession>(*rt.replicator, kj::mv(conn), true, port.getTimer());
                  auto promise = session->sync(progress);
                  return promise.attach(kj::mv(session));
                })
                .wait(ws);
        endProgress();
        summary.peersReached++;
        for (const auto& r : results) {
          summary.received += r.received;
          summary.sent += r.sent;
          if (!json) {
            std::cerr << "sync: journal " << toHex(r.journal).substr(0, 8) << " with " << label << " (" << where
                      << "): received " << r.received << ", sent " << r.sent << std::endl;
          }
        }
        if (results.empty() && !json) {
          std::cerr << "sync: " << label << " (" << where << ") shares no journal with this node yet" << std::endl;
        }
        break;
      } catch (const kj::Exception& e) {
        endProgress();
        std::string reason = e.getDescription().cStr();
        if (attempt == attempts) {
          summary.failures.push_back(terminalSafe(label + " (" + where + "): " + reason, Newlines::ESCAPE));
        } else {
          kj::Promise<void> delay =
              port.getTimer().afterDelay((SYNC_RETRY_DELAY_MS << (attempt - 1)) * kj::MILLISECONDS);
          delay.wait(ws);
        }
      }
    }
  }
  return summary;
}

}  // namespace kith::cli
