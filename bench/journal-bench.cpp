// Appends and reads back N entries on one node and prints the rates next to the Ed25519 sign and
// verify rates measured in the same run, so that ratios, not absolute times, are compared.
//
//   journal-bench [N] [TEXT_BYTES]      (defaults: 20000 entries of 256 bytes)
//
// Phases: "post" = store::post, one synced write transaction per entry (the CLI's path);
// "append" = sign + encrypt N entries, appended in batches of 1000 (the replication path);
// "read" = readJournal: read, verify the signature and decrypt every entry.
#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "crypto/keys.h"
#include "crypto/sodium.h"
#include "store/journal.h"

using namespace kith;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// Ed25519 sign and verify of 256-byte messages, for at least 0.5 s each.
std::pair<double, double> ed25519Rates(const crypto::Identity& id) {
  Bytes msg(256, 0x5a);
  auto start = Clock::now();
  size_t n = 0;
  crypto::Signature sig{};
  while (seconds(start) < 0.5) {
    for (int i = 0; i < 100; ++i) sig = id.sign(msg);
    n += 100;
  }
  double signRate = static_cast<double>(n) / seconds(start);
  start = Clock::now();
  n = 0;
  while (seconds(start) < 0.5) {
    for (int i = 0; i < 100; ++i) {
      if (!crypto::verify(id.publicKey(), msg, sig)) std::abort();
    }
    n += 100;
  }
  return {signRate, static_cast<double>(n) / seconds(start)};
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kith-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

int main(int argc, char** argv) {
  crypto::init();
  size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
  size_t textBytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 256;
  size_t posts = std::min<size_t>(n, 300);
  std::string text(textBytes, 'x');

  crypto::Identity id = crypto::Identity::generate();
  crypto::SecretBuffer storageKey = id.deriveKey("kithstor", 1);
  store::Keyring keyring{id, storageKey.view()};
  auto [signRate, verifyRate] = ed25519Rates(id);
  fmt::print("reference: ed25519 sign {:.0f}/s, verify {:.0f}/s (256-byte messages, one core)\n", signRate, verifyRate);

  TempDir dir;
  auto store = store::Store::open(dir.path);
  store::JournalId journal = store::createJournal(*store, keyring, "bench");

  // post: one synced transaction per entry.
  auto start = Clock::now();
  for (size_t i = 0; i < posts; ++i) store::post(*store, keyring, journal, {protocol::Kind::UPDATE, text, {}});
  double postRate = static_cast<double>(posts) / seconds(start);

  // append: sign + encrypt, then batches of 1000 per transaction.
  auto epochKey = store->epochKey(journal, 0, keyring.storageKey);
  auto head = store->head(journal, id.publicKey());
  start = Clock::now();
  std::vector<protocol::Entry> batch;
  for (size_t i = 0; i < n; ++i) {
    protocol::EntryDraft d;
    d.journal = journal;
    d.seq = head->seq + 1;
    d.prev = head->id;
    d.timestampMs = nowMs();
    d.body = protocol::Body{protocol::Kind::UPDATE, text, {}};
    batch.push_back(protocol::signEntry(id, d, epochKey->view()));
    head = store::Head{d.seq, batch.back().id};
    if (batch.size() == 1000 || i + 1 == n) {
      for (const auto& outcome : store->appendBatch(batch, &keyring)) {
        if (outcome.status != store::AppendStatus::ADDED) {
          fmt::print(stderr, "append failed: {}\n", outcome.message);
          return 1;
        }
      }
      batch.clear();
    }
  }
  double appendSeconds = seconds(start);
  double appendRate = static_cast<double>(n) / appendSeconds;

  // read: timeline, verify, decrypt.
  start = Clock::now();
  auto entries = store::readJournal(*store, keyring, journal);
  double readSeconds = seconds(start);
  size_t readable = 0;
  for (const auto& e : entries) readable += e.body ? 1 : 0;
  if (entries.size() != n + posts + 1 || readable != entries.size()) {
    fmt::print(stderr, "read back {} entries ({} readable), expected {}\n", entries.size(), readable, n + posts + 1);
    return 1;
  }
  double readRate = static_cast<double>(entries.size()) / readSeconds;

  fmt::print("post   (1 synced txn/entry): {:8.0f} entries/s  = {:.3f} x sign rate\n", postRate, postRate / signRate);
  fmt::print("append (sign+encrypt+store, 1000/txn): {:8.0f} entries/s  = {:.2f} x sign rate\n", appendRate,
             appendRate / signRate);
  fmt::print("read   (read+verify+decrypt): {:8.0f} entries/s  = {:.2f} x verify rate\n", readRate,
             readRate / verifyRate);
  fmt::print(
      "entries={} text_bytes={} sign_per_s={:.0f} verify_per_s={:.0f} post_per_s={:.0f} "
      "append_per_s={:.0f} read_per_s={:.0f} append_ratio={:.2f} read_ratio={:.2f}\n",
      n, textBytes, signRate, verifyRate, postRate, appendRate, readRate, appendRate / signRate, readRate / verifyRate);
  return 0;
}
