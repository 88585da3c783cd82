#include "cli/runtime.h"

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <iostream>
#include <mutex>
#include <string_view>

namespace kith::cli {
namespace {

// Between attempts to reach one peer: this, doubled per failed attempt.
constexpr unsigned SYNC_RETRY_DELAY_MS = 500;
// At most one progress line per this long, per peer.
constexpr auto SYNC_PROGRESS_EVERY = std::chrono::seconds(1);

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
      auto lastPrint = std::chrono::steady_clock::now();
      auto progress = [&](const node::SyncProgress& p) {
        auto now = std::chrono::steady_clock::now();
        if (json || now - lastPrint < SYNC_PROGRESS_EVERY) return;
        lastPrint = now;
        std::cerr << "sync: journal " << toHex(p.journal).substr(0, 8) << " from " << label << ": received "
                  << p.received << " of " << p.expected << " entries, sent " << p.sent << std::endl;
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
