// What a network observer sees: every byte between two real nodes (an owner and a member that
// follows the journal) recorded by a relay on loopback, over a handshake and a replication round
// both ways, then searched for what must never cross the wire readable: either side's identity key
// (Ed25519) and its Noise static key (X25519), the journal's id, its title, the text of updates and
// comments, the member keys, the epoch key, entry ids and any stretch of a signed entry's bytes.
// Each is looked for as raw bytes, in hex (either case) and in base64 (either alphabet, at any
// alignment).
//
// The detector is itself tested: it must find a needle planted in each form at random offsets, and
// the same relay must catch a key sent in the clear over a plain TCP connection.
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "crypto/noise.h"
#include "tests/node/node-fixture.h"

namespace kith::node::test {
namespace {

using protocol::Kind;
using protocol::Role;

// Signed entries are searched for in windows of this many bytes, one every WINDOW_BYTES: no run
// of an entry that long may cross the wire unencrypted.
constexpr size_t ENTRY_WINDOW_BYTES = 16;
// Base64 characters that depend on neither the bytes before a needle nor those after it need a
// needle of at least this many bytes to mean anything.
constexpr size_t BASE64_NEEDLE_BYTES_MIN = 6;

Bytes bytesOf(const std::string& text) { return Bytes(text.begin(), text.end()); }
Bytes bytesOf(ByteView view) { return Bytes(view.begin(), view.end()); }

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// The base64 characters of `needle` (in `variant`) that stay the same wherever the needle sits in
// a longer base64 text: encoded after `shift` filler bytes, minus the characters that mix filler
// bits or the unknown bytes after it.
std::string base64Core(ByteView needle, size_t shift, int variant) {
  Bytes shifted(shift, 0);
  shifted.insert(shifted.end(), needle.begin(), needle.end());
  std::string out(sodium_base64_encoded_len(shifted.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), shifted.data(), shifted.size(), variant);
  out.resize(std::strlen(out.c_str()));
  // Leading: 0, 2 or 3 characters carry filler bits. Trailing: the last character of a partial
  // group carries bits of whatever follows.
  size_t drop = shift == 0 ? 0 : shift + 1;
  size_t keep = out.size() - drop - (shifted.size() % 3 != 0 ? 1 : 0);
  return out.substr(drop, keep);
}

// Every form of `needle` the capture is searched for, named.
std::vector<std::pair<std::string, Bytes>> encodings(ByteView needle) {
  std::vector<std::pair<std::string, Bytes>> out;
  out.emplace_back("raw", bytesOf(needle));
  std::string hex = toHex(needle);
  out.emplace_back("hex", bytesOf(hex));
  out.emplace_back("HEX", bytesOf(upper(hex)));
  if (needle.size() >= BASE64_NEEDLE_BYTES_MIN) {
    for (int variant : {sodium_base64_VARIANT_ORIGINAL_NO_PADDING, sodium_base64_VARIANT_URLSAFE_NO_PADDING}) {
      for (size_t shift = 0; shift < 3; ++shift) {
        out.emplace_back("base64 (shift " + std::to_string(shift) + ")", bytesOf(base64Core(needle, shift, variant)));
      }
    }
  }
  return out;
}

bool occurs(const Bytes& haystack, const Bytes& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

// The form in which `needle` occurs in `wire`, or "" when it occurs in none.
std::string foundAs(const Bytes& wire, ByteView needle) {
  for (const auto& [form, bytes] : encodings(needle)) {
    if (occurs(wire, bytes)) return form;
  }
  return "";
}

struct Needle {
  std::string what;
  Bytes bytes;
};

Bytes x25519Of(const PublicKey& ed25519) {
  auto x = crypto::noise::ed25519PublicToX25519(ed25519);
  REQUIRE(x.has_value());
  return bytesOf(ByteView(x->data(), x->size()));
}

}  // namespace

TEST_CASE("capture: the detector finds a needle planted raw in hex or in base64 at any offset", "[node][capture]") {
  const uint64_t seed = testSeed("capture detector");
  std::mt19937_64 rng(seed);
  auto randomBytes = [&rng](size_t n) {
    Bytes out(n);
    for (auto& b : out) b = static_cast<uint8_t>(rng());
    return out;
  };
  const Bytes wire = randomBytes(64 * 1024);
  const Bytes needle = randomBytes(32);
  REQUIRE(foundAs(wire, needle).empty());

  // A base64 text of the needle inside other bytes, at each alignment: what an encoder of a
  // larger message would produce.
  for (size_t before = 0; before < 3; ++before) {
    for (size_t after = 0; after < 3; ++after) {
      for (int variant : {sodium_base64_VARIANT_ORIGINAL_NO_PADDING, sodium_base64_VARIANT_URLSAFE}) {
        Bytes message = randomBytes(before);
        message.insert(message.end(), needle.begin(), needle.end());
        Bytes tail = randomBytes(after);
        message.insert(message.end(), tail.begin(), tail.end());
        std::string text(sodium_base64_encoded_len(message.size(), variant), '\0');
        sodium_bin2base64(text.data(), text.size(), message.data(), message.size(), variant);
        text.resize(std::strlen(text.c_str()));
        Bytes planted = wire;
        size_t at = rng() % wire.size();
        planted.insert(planted.begin() + static_cast<std::ptrdiff_t>(at), text.begin(), text.end());
        INFO("base64 with " << before << " bytes before and " << after << " after, at offset " << at);
        CHECK(!foundAs(planted, needle).empty());
      }
    }
  }
  // Raw and hex, at random offsets.
  for (const auto& [form, bytes] : encodings(needle)) {
    Bytes planted = wire;
    size_t at = rng() % wire.size();
    planted.insert(planted.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin(), bytes.end());
    INFO(form << " at offset " << at);
    CHECK(foundAs(planted, needle) == form);
  }
}

TEST_CASE("capture: the recording relay catches a key sent in the clear over plain TCP", "[node][capture]") {
  UvIoContext io;
  auto& port = io.getPort();
  auto key = crypto::Identity::generate();
  {
    UvListener listener(port, "127.0.0.1", 0);
    TcpProxy relay(port, listener.getPort(), std::nullopt, /*capture=*/true);
    auto server = listener.accept();
    auto client = waitWithin(io, connect(port, "127.0.0.1", relay.port()));
    auto accepted = waitWithin(io, kj::mv(server));
    std::string message = "my key is " + toHex(key.publicKey()) + "\n";
    waitWithin(io, client->write(message.data(), message.size()));
    auto buffer = kj::heapArray<kj::byte>(message.size());
    REQUIRE(waitWithin(io, accepted->tryRead(buffer.begin(), buffer.size(), buffer.size())) == message.size());
    REQUIRE(relay.captured(true).size() == message.size());
    CHECK(foundAs(relay.captured(true), key.publicKey()) == "hex");
    CHECK(foundAs(relay.captured(false), key.publicKey()).empty());
  }
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("capture: an initiator dialling an impostor at the expected address never sends its key", "[node][capture]") {
  UvIoContext io;
  auto& port = io.getPort();
  auto& timer = io.getTimer();
  auto initiator = crypto::Identity::generate();
  auto expected = crypto::Identity::generate();  // the node the initiator means to reach
  auto impostor = crypto::Identity::generate();  // what answers at its address
  {
    UvListener listener(port, "127.0.0.1", 0);
    TcpProxy relay(port, listener.getPort(), std::nullopt, /*capture=*/true);
    auto responder = settle(listener.accept().then([&](kj::Own<UvStream> stream) {
      return secureRespond(
          kj::mv(stream), impostor, [](const crypto::PublicKey&) { return std::string(); }, timer);
    }));
    auto dialled = settle(connect(port, "127.0.0.1", relay.port()).then([&](kj::Own<UvStream> stream) {
      return secureInitiate(kj::mv(stream), initiator, expected.publicKey(), timer);
    }));
    auto ends = waitWithin(io, kj::joinPromises(kj::arr(kj::mv(responder), kj::mv(dialled))));
    CHECK_FALSE(ends[0].ok());
    CHECK_FALSE(ends[1].ok());
    REQUIRE(waitFor(io, [&] { return relay.openConnections() == 0; }));
    REQUIRE(relay.connections() == 1);
    // Only message 1 went out (its ephemeral key and an empty payload's tag): no message 3.
    CHECK(relay.bytes(true) == crypto::noise::FRAME_HEADER_BYTES + crypto::noise::DH_BYTES + crypto::noise::TAG_BYTES);
    for (bool toResponder : {true, false}) {
      const Bytes& wire = relay.captured(toResponder);
      REQUIRE(wire.size() == relay.bytes(toResponder));
      CHECK(foundAs(wire, initiator.publicKey()) == "");
      CHECK(foundAs(wire, x25519Of(initiator.publicKey())) == "");
    }
  }
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("capture: a handshake and replication both ways put no key id member or text on the wire",
          "[node][capture]") {
  const uint64_t seed = testSeed("capture");
  const std::string tag = " (" + std::to_string(seed) + ")";
  const std::string title = "Mum's recovery journal" + tag;
  const std::string before = "Mum's surgery is on Monday at nine" + tag;
  const std::string live = "Mum is home on Thursday, visits after six" + tag;
  const std::string comment = "Thinking of you all, I can bring soup" + tag;

  UvIoContext io;
  TestNode owner(io, "owner");
  TestNode member(io, "member");  // dials the owner: the handshake's initiator
  TestNode absent(io, "absent");  // a member that never connects: its key is only inside entries
  auto ring = owner.keyring();
  JournalId journal = store::createJournal(*owner.store, ring, title);
  store::addMember(*owner.store, ring, journal, member.key(), Role::SUBSCRIBER);
  store::addMember(*owner.store, ring, journal, absent.key(), Role::COAUTHOR);
  owner.post(journal, before);
  owner.start();

  std::vector<Needle> needles;
  {
    TcpProxy relay(io.getPort(), owner.port, std::nullopt, /*capture=*/true);
    member.follow(journal);
    member.trusted.push_back(owner.key());
    member.dial(relay.port(), owner.key());
    member.start();

    // A round: the member catches up, gets a live post, and sends a comment back.
    REQUIRE(waitFor(io, [&] { return member.holds(journal) && member.heads(journal) == owner.heads(journal); }));
    auto livePost = owner.post(journal, live);
    REQUIRE(waitFor(io, [&] { return member.headOf(journal, owner.key()) == livePost.seq; }));
    auto reply = member.post(journal, comment, Kind::COMMENT, {livePost.id});
    REQUIRE(waitFor(io, [&] { return owner.headOf(journal, member.key()) == reply.seq; }));
    REQUIRE(digest(*member.store, journal) == digest(*owner.store, journal));
    member.stop();
    REQUIRE(waitFor(io, [&] { return relay.openConnections() == 0; }));

    // Every byte of every connection was recorded: there was one, and the record is whole.
    REQUIRE(relay.connections() == 1);
    for (bool toOwner : {true, false}) {
      REQUIRE(relay.bytes(toOwner) > 0);
      REQUIRE(relay.captured(toOwner).size() == relay.bytes(toOwner));
    }
    // The member sent its comment, so the member → owner direction carried entry bytes too.
    CHECK(relay.bytes(true) > packedBytes(*owner.store, journal, member.key(), 1, reply.seq));

    needles.push_back({"the initiator's (member's) Ed25519 identity key", bytesOf(member.key())});
    needles.push_back({"the initiator's (member's) X25519 static key", x25519Of(member.key())});
    needles.push_back({"the responder's (owner's) Ed25519 identity key", bytesOf(owner.key())});
    needles.push_back({"the responder's (owner's) X25519 static key", x25519Of(owner.key())});
    needles.push_back({"an absent member's Ed25519 key", bytesOf(absent.key())});
    needles.push_back({"an absent member's X25519 key", x25519Of(absent.key())});
    needles.push_back({"the journal id", bytesOf(journal)});
    needles.push_back({"the title", bytesOf(title)});
    needles.push_back({"an update posted before the connection", bytesOf(before)});
    needles.push_back({"a live update", bytesOf(live)});
    needles.push_back({"the member's comment", bytesOf(comment)});
    auto epochKey = owner.store->epochKey(journal, 0, owner.storageKey.view());
    REQUIRE(epochKey.has_value());
    needles.push_back({"the epoch-0 key", bytesOf(epochKey->view())});
    size_t entries = 0;
    for (const auto& r : store::readJournal(*owner.store, owner.keyring(), journal)) {
      needles.push_back({r.entry.author == owner.key() ? "the id of an owner's entry" : "the id of a member's entry",
                         bytesOf(r.entry.id)});
      ++entries;
    }
    CHECK(entries == 6);  // create, two members, two updates, one comment

    Bytes both = relay.captured(true);
    both.insert(both.end(), relay.captured(false).begin(), relay.captured(false).end());
    for (const auto& n : needles) {
      INFO(n.what << " (" << toHex(n.bytes).substr(0, 32) << "...)");
      for (bool toOwner : {true, false}) {
        INFO((toOwner ? "member -> owner" : "owner -> member"));
        CHECK(foundAs(relay.captured(toOwner), n.bytes) == "");
      }
    }
    // No stretch of any signed entry (signature, clear fields, sealed body) crosses in the clear.
    size_t windows = 0, seen = 0;
    for (const auto& [author, last] : owner.heads(journal)) {
      for (const Bytes& packed :
           owner.store->rangePacked(journal, author, 1, store::RANGE_LIMIT_MAX, size_t{1} << 30)) {
        for (size_t at = 0; at + ENTRY_WINDOW_BYTES <= packed.size(); at += ENTRY_WINDOW_BYTES) {
          Bytes window(packed.begin() + static_cast<std::ptrdiff_t>(at),
                       packed.begin() + static_cast<std::ptrdiff_t>(at + ENTRY_WINDOW_BYTES));
          ++windows;
          seen += occurs(both, window) ? 1 : 0;
        }
      }
    }
    CHECK(windows > 100);
    CHECK(seen == 0);
  }
  owner.stop();
  REQUIRE_NOTHROW(io.shutdown());
}

}  // namespace kith::node::test
