// Writes the fuzz targets' seed corpora with kith's own encoders: `make-corpus DIR` fills
// DIR/<target>/ for every target of tests/fuzz/ (the committed corpus is tests/fuzz/corpus/). The
// inputs are valid, so that fuzzing starts from what kith really reads: signed entries of every
// kind, invite codes, the messages of a real handshake under the targets' fixed keys, transport
// frames, key files plain and sealed, and the RPC messages a peer sent in real sessions with a node.
//
// Signatures are deterministic but encryption nonces, wraps and salts are not, so two runs write
// different bytes that test the same things.
#include <capnp/rpc-twoparty.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <kj/async-io.h>
#include <kj/async.h>

#include "base/error.h"
#include "crypto/aead.h"
#include "crypto/key-file.h"
#include "crypto/noise.h"
#include "node/limits.h"
#include "node/replicator.h"
#include "protocol/entry.h"
#include "protocol/invite.h"
#include "tests/fuzz/fuzz-support.h"
#include "tests/fuzz/rpc-node.h"

namespace {

using namespace kith;
namespace fs = std::filesystem;
namespace noise = crypto::noise;

class CorpusWriter {
public:
  explicit CorpusWriter(fs::path root) : root_(std::move(root)) {}

  void write(const std::string& target, const std::string& name, ByteView bytes) {
    fs::path dir = root_ / target;
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw Error(ErrorKind::IO, "cannot write " + (dir / name).string());
    ++written_;
  }
  size_t written() const { return written_; }

private:
  fs::path root_;
  size_t written_ = 0;
};

Bytes concat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes prefixed(std::initializer_list<uint8_t> prefix, ByteView rest) {
  Bytes out(prefix);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// entry: a journal's life, every kind of entry and control.

void writeEntries(CorpusWriter& corpus) {
  crypto::Identity owner = fuzz::fixedIdentity(0x41);
  crypto::Identity coauthor = fuzz::fixedIdentity(0x42);
  crypto::Identity relay = fuzz::fixedIdentity(0x43);
  Key32 epoch0 = fuzz::fixedKey(0x44);
  Key32 epoch1 = fuzz::fixedKey(0x45);
  Bytes salt(protocol::JOURNAL_SALT_BYTES, 0x46);
  protocol::JournalId journal = protocol::journalIdFor(owner.publicKey(), salt);

  auto wrap = [](const crypto::Identity& member, uint32_t epoch, ByteView key) {
    return protocol::KeyWrap{member.publicKey(), epoch, crypto::sealTo(member.boxPublicKey(), key)};
  };
  auto draftAfter = [&](const protocol::Entry* previous, uint64_t seq, uint32_t epoch) {
    protocol::EntryDraft d;
    d.journal = journal;
    d.seq = seq;
    if (previous) d.prev = previous->id;
    d.timestampMs = 1'700'000'000'000 + static_cast<int64_t>(seq) * 1000;
    d.epoch = epoch;
    return d;
  };
  auto put = [&](const std::string& name, const protocol::Entry& e) {
    corpus.write("entry", name, protocol::packEntry(e));
  };

  auto d = draftAfter(nullptr, 1, 0);
  d.control.type = protocol::Control::Type::CREATE;
  d.control.salt = salt;
  d.control.wraps.push_back(wrap(owner, 0, epoch0));
  d.body = protocol::Body{protocol::Kind::JOURNAL_INFO, "The Ada family", {}};
  auto genesis = protocol::signEntry(owner, d, ByteView(epoch0));
  put("01-create", genesis);

  d = draftAfter(&genesis, 2, 0);
  d.control.type = protocol::Control::Type::ADD_MEMBER;
  d.control.member = coauthor.publicKey();
  d.control.role = protocol::Role::COAUTHOR;
  d.control.wraps.push_back(wrap(coauthor, 0, epoch0));
  auto addCoauthor = protocol::signEntry(owner, d, std::nullopt);
  put("02-add-coauthor", addCoauthor);

  d = draftAfter(&addCoauthor, 3, 0);
  d.control.type = protocol::Control::Type::ADD_MEMBER;
  d.control.member = relay.publicKey();
  d.control.role = protocol::Role::RELAY;
  auto addRelay = protocol::signEntry(owner, d, std::nullopt);
  put("03-add-relay", addRelay);

  d = draftAfter(&addRelay, 4, 0);
  d.body = protocol::Body{protocol::Kind::UPDATE, "First steps today!", {}};
  auto update = protocol::signEntry(owner, d, ByteView(epoch0));
  put("04-update", update);

  d = draftAfter(nullptr, 1, 0);
  d.body = protocol::Body{protocol::Kind::COMMENT, "Wonderful", {update.id}};
  auto comment = protocol::signEntry(coauthor, d, ByteView(epoch0));
  put("05-comment", comment);

  d = draftAfter(&comment, 2, 0);
  d.body = protocol::Body{protocol::Kind::HEART, "", {update.id}};
  auto heart = protocol::signEntry(coauthor, d, ByteView(epoch0));
  put("06-heart", heart);

  d = draftAfter(&update, 5, 0);
  d.control.type = protocol::Control::Type::REMOVE_MEMBER;
  d.control.member = relay.publicKey();
  d.control.newEpoch = 1;
  d.control.wraps.push_back(wrap(owner, 1, epoch1));
  d.control.wraps.push_back(wrap(coauthor, 1, epoch1));
  auto remove = protocol::signEntry(owner, d, std::nullopt);
  put("07-remove-member", remove);

  d = draftAfter(&remove, 6, 1);
  d.body = protocol::Body{protocol::Kind::UPDATE, std::string(2000, 'x'), {genesis.id, update.id}};
  put("08-update-epoch-1", protocol::signEntry(owner, d, ByteView(epoch1)));
}

// ---------------------------------------------------------------------------------------------
// invite

void writeInvites(CorpusWriter& corpus) {
  protocol::InviteCode code;
  code.node = fuzz::fixedIdentity(0x51).publicKey();
  code.secret = Bytes(protocol::INVITE_SECRET_BYTES, 0x52);
  auto put = [&](const std::string& name, const std::string& text) { corpus.write("invite", name, asBytes(text)); };

  code.addresses = {{"192.0.2.7", 7447}};
  std::string ipv4 = protocol::encodeInvite(code);
  put("01-ipv4", ipv4);
  std::string spoken;  // lower case, spaces for dashes, o for 0 and l for 1: as typed from a call
  for (char c : ipv4) {
    char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    spoken += lower == '-' ? ' ' : lower == '0' ? 'o' : lower == '1' ? 'l' : lower;
  }
  put("02-ipv4-as-typed", spoken);
  code.addresses = {{"2001:db8::1", 7447}};
  put("03-ipv6", protocol::encodeInvite(code));
  code.addresses = {{"home.example.org", 443}};
  put("04-dns", protocol::encodeInvite(code));
  code.addresses = {{"192.0.2.7", 7447}, {"2001:db8::7", 7448}, {"kith.example.net", 1}, {"10.0.0.1", 65535}};
  put("05-four-addresses", protocol::encodeInvite(code));
  std::string longHost;
  while (longHost.size() + 64 <= protocol::INVITE_HOST_BYTES_MAX) longHost += std::string(63, 'a') + ".";
  longHost += "example";
  code.addresses = {{longHost, 7447}};
  put("06-long-host", protocol::encodeInvite(code));
  // The longest name the spec allows: 253 bytes in labels of 63, 63, 63 and 61.
  std::string longest =
      std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(63, 'd') + "." + std::string(61, 'e');
  code.addresses = {{longest, 7447}};
  put("07-longest-host", protocol::encodeInvite(code));
}

// ---------------------------------------------------------------------------------------------
// noise: the three messages of real handshakes under the target's fixed keys.

void writeHandshakes(CorpusWriter& corpus) {
  auto run = [&](ByteView payload1, ByteView payload2, ByteView payload3, const std::string& suffix) {
    noise::HandshakeState initiator = fuzz::noiseInitiator();
    noise::HandshakeState responder = fuzz::noiseResponder();
    Bytes m1 = initiator.writeMessage(payload1);
    (void)responder.readMessage(m1);
    Bytes m2 = responder.writeMessage(payload2);
    (void)initiator.readMessage(m2);
    Bytes m3 = initiator.writeMessage(payload3);
    (void)responder.readMessage(m3);
    // Messages 1 and 2 without payloads are the same in every run (fixed keys): written once.
    if (suffix.empty() || !payload1.empty())
      corpus.write("noise", "message-1" + suffix, prefixed({fuzz::NOISE_MESSAGE_1}, m1));
    if (suffix.empty() || !payload2.empty())
      corpus.write("noise", "message-2" + suffix, prefixed({fuzz::NOISE_MESSAGE_2}, m2));
    corpus.write("noise", "message-3" + suffix, prefixed({fuzz::NOISE_MESSAGE_3}, m3));
  };
  run({}, {}, {}, "");
  // As kith's secure stream does: message 3 carries the initiator's Ed25519 key.
  Key32 identity = fuzz::fixedIdentity(0x61).publicKey();
  run({}, {}, identity, "-identity");
  Bytes status = {0x01, 'o', 'k'};
  run(status, status, status, "-payloads");
}

// ---------------------------------------------------------------------------------------------
// frames: transport messages under the target's key, and bare handshake frames.

void writeFrames(CorpusWriter& corpus) {
  Key32 key = fuzz::fixedKey(fuzz::FRAMES_KEY);
  noise::TransportEncoder encoder{noise::CipherState(key)};
  Bytes empty = encoder.encrypt({});
  Bytes hello = encoder.encrypt(asBytes("hello, family"));
  Bytes medium = encoder.encrypt(Bytes(1000, 0x5a));
  corpus.write("frames", "transport-empty", prefixed({0xff, 0}, empty));
  corpus.write("frames", "transport-three", prefixed({0xff, 7}, concat({empty, hello, medium})));
  // A plaintext over one frame's payload: two frames, fed one byte at a time.
  noise::TransportEncoder longEncoder{noise::CipherState(key)};
  corpus.write("frames", "transport-split",
               prefixed({0xff, 1}, longEncoder.encrypt(Bytes(noise::TRANSPORT_PAYLOAD_BYTES_MAX + 100, 0x33))));

  noise::HandshakeState initiator = fuzz::noiseInitiator();
  Bytes m1 = noise::frame(initiator.writeMessage({}));
  corpus.write("frames", "handshake-frame", prefixed({0, 3}, m1));
  corpus.write("frames", "handshake-then-transport",
               prefixed({0x01, 0}, concat({m1, noise::frame(asBytes("x")), hello})));
}

// ---------------------------------------------------------------------------------------------
// keyfile

void writeKeyFiles(CorpusWriter& corpus) {
  crypto::Identity identity = fuzz::fixedIdentity(0x71);
  corpus.write("keyfile", "plain", crypto::writeKeyFile(identity, "Ada", std::nullopt));
  corpus.write("keyfile", "plain-no-name", crypto::writeKeyFile(identity, "", std::nullopt));
  corpus.write("keyfile", "plain-long-name",
               crypto::writeKeyFile(identity, std::string(crypto::KEY_FILE_NAME_BYTES_MAX, 'n'), std::nullopt));
  // Sealed at the interactive cost (what kith wrote before, and still opens), which the target can
  // afford to try its passphrase on; and one at the moderate cost kith writes now, which it opens
  // without a passphrase only.
  corpus.write(
      "keyfile", "sealed",
      crypto::writeKeyFile(identity, "Ada", asBytes(fuzz::KEY_FILE_PASSPHRASE), crypto::KEY_FILE_COST_INTERACTIVE));
  corpus.write("keyfile", "sealed-other-passphrase",
               crypto::writeKeyFile(identity, "Ada", asBytes("another one"), crypto::KEY_FILE_COST_INTERACTIVE));
  corpus.write("keyfile", "sealed-moderate",
               crypto::writeKeyFile(identity, "Ada", asBytes(fuzz::KEY_FILE_PASSPHRASE), crypto::KEY_FILE_COST));
}

// ---------------------------------------------------------------------------------------------
// rpc: what a peer's side sent in real sessions with a node, captured below the RPC system.

// Passes everything through to `inner`, keeping a copy of what is written.
class CaptureStream final : public kj::AsyncIoStream {
public:
  CaptureStream(kj::AsyncIoStream& inner, Bytes& written) : inner_(inner), written_(written) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return inner_.tryRead(buffer, minBytes, maxBytes);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    auto bytes = static_cast<const uint8_t*>(buffer);
    written_.insert(written_.end(), bytes, bytes + size);
    return inner_.write(buffer, size);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    for (auto piece : pieces) written_.insert(written_.end(), piece.begin(), piece.end());
    return inner_.write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_.whenWriteDisconnected(); }
  void shutdownWrite() override { inner_.shutdownWrite(); }
  void abortRead() override { inner_.abortRead(); }

private:
  kj::AsyncIoStream& inner_;
  Bytes& written_;
};

// A subscriber's sink: counts pushes and answers each with no heads.
class CountingSink final : public rpc::EntrySink::Server {
public:
  explicit CountingSink(kj::Own<kj::PromiseFulfiller<void>> firstPush) : firstPush_(kj::mv(firstPush)) {}

protected:
  kj::Promise<void> push(PushContext context) override {
    (void)context.getParams().getEntries();
    context.getResults().initHeads(0);
    firstPush_->fulfill();
    return kj::READY_NOW;
  }

private:
  kj::Own<kj::PromiseFulfiller<void>> firstPush_;
};

using Session = std::function<void(fuzz::RpcNode& node, rpc::Node::Client remote, kj::WaitScope& ws)>;

// Runs `session` as the peer against a fresh node, and returns what the peer sent.
Bytes captureSession(const Session& session) {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  fuzz::RpcNode node;
  Bytes written;
  {
    auto pipe = kj::newTwoWayPipe();
    capnp::ReaderOptions options;
    options.traversalLimitInWords = node::RPC_MESSAGE_WORDS_MAX;
    options.nestingLimit = node::RPC_NESTING_MAX;
    capnp::TwoPartyVatNetwork serverNetwork(*pipe.ends[0], capnp::rpc::twoparty::Side::SERVER, options);
    auto server = capnp::makeRpcServer(serverNetwork, node.replicator().nodeFor(node.peer().publicKey()));

    CaptureStream capture(*pipe.ends[1], written);
    capnp::TwoPartyVatNetwork clientNetwork(capture, capnp::rpc::twoparty::Side::CLIENT, options);
    auto client = capnp::makeRpcClient(clientNetwork);
    capnp::MallocMessageBuilder vat;
    vat.initRoot<capnp::rpc::twoparty::VatId>().setSide(capnp::rpc::twoparty::Side::SERVER);
    {
      auto remote = client.bootstrap(vat.getRoot<capnp::rpc::twoparty::VatId>()).castAs<rpc::Node>();
      session(node, remote, ws);
    }
    // Let the peer's Finish and Release messages go out before the bytes are taken.
    ws.poll();
  }
  ws.poll();
  return written;
}

kj::ArrayPtr<const kj::byte> view(ByteView b) { return {b.data(), b.size()}; }

rpc::Journal::Client journalOf(rpc::Node::Client& remote, const protocol::JournalId& id) {
  auto request = remote.journalRequest();
  request.setId(view(id));
  return request.send().getJournal();
}

void writeRpc(CorpusWriter& corpus) {
  auto put = [&](const std::string& name, const Session& session) {
    corpus.write("rpc", name, captureSession(session));
  };

  put("01-journals", [](fuzz::RpcNode&, rpc::Node::Client remote, kj::WaitScope& ws) {
    auto ids = remote.journalsRequest().send().wait(ws).getIds();
    if (ids.size() != 1) throw Error(ErrorKind::IO, "rpc seed: the peer should see one journal");
  });
  put("02-heads-and-fetch", [](fuzz::RpcNode& node, rpc::Node::Client remote, kj::WaitScope& ws) {
    auto journal = journalOf(remote, node.journal());
    (void)journal.headsRequest().send().wait(ws);
    auto fetch = journal.fetchRequest();
    fetch.setAuthor(view(node.owner().publicKey()));
    fetch.setFromSeq(1);
    fetch.setLimit(10);
    if (fetch.send().wait(ws).getEntries().size() == 0) throw Error(ErrorKind::IO, "rpc seed: nothing fetched");
  });
  put("03-push", [](fuzz::RpcNode& node, rpc::Node::Client remote, kj::WaitScope& ws) {
    protocol::EntryDraft d;
    d.journal = node.journal();
    d.seq = 1;
    d.timestampMs = 1'700'000'100'000;
    d.body = protocol::Body{protocol::Kind::UPDATE, "from the peer", {}};
    auto entry = protocol::signEntry(node.peer(), d, node.epochKey());
    auto push = journalOf(remote, node.journal()).pushRequest();
    node::fillEntries(push.initEntries(1), {protocol::packEntry(entry)});
    if (push.send().wait(ws).getHeads().size() == 0) throw Error(ErrorKind::IO, "rpc seed: no heads after a push");
  });
  put("04-subscribe", [](fuzz::RpcNode& node, rpc::Node::Client remote, kj::WaitScope& ws) {
    auto firstPush = kj::newPromiseAndFulfiller<void>();
    auto subscribe = journalOf(remote, node.journal()).subscribeRequest();
    subscribe.initHave(0);
    subscribe.setSink(kj::heap<CountingSink>(kj::mv(firstPush.fulfiller)));
    auto subscription = subscribe.send().wait(ws).getSubscription();
    firstPush.promise.wait(ws);
  });
  put("05-redeem-invite", [](fuzz::RpcNode&, rpc::Node::Client remote, kj::WaitScope& ws) {
    auto redeem = remote.redeemInviteRequest();
    Bytes secret(protocol::INVITE_SECRET_BYTES, fuzz::RPC_INVITE_SECRET);
    redeem.setSecret(view(secret));
    // The peer is a member already: the node may answer with the journal or refuse; both are seeds.
    redeem.send().then([](auto&&) {}, [](kj::Exception&&) {}).wait(ws);
  });
  put("06-refusals", [](fuzz::RpcNode&, rpc::Node::Client remote, kj::WaitScope& ws) {
    // A journal not held here, and an unknown invite: both answer with an exception.
    Key32 unknown = fuzz::fixedKey(0x77);
    bool journalRefused = false;
    bool inviteRefused = false;
    journalOf(remote, unknown)
        .headsRequest()
        .send()
        .then([](auto&&) {}, [&](kj::Exception&&) { journalRefused = true; })
        .wait(ws);
    auto redeem = remote.redeemInviteRequest();
    redeem.setSecret(view(ByteView(unknown).first(protocol::INVITE_SECRET_BYTES)));
    redeem.send().then([](auto&&) {}, [&](kj::Exception&&) { inviteRefused = true; }).wait(ws);
    if (!journalRefused) throw Error(ErrorKind::IO, "rpc seed: a journal not held was served");
    if (!inviteRefused) throw Error(ErrorKind::IO, "rpc seed: an unknown invite was redeemed");
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n  writes DIR/<target>/ for every fuzz target\n", argv[0]);
    return 2;
  }
  try {
    fuzz::setUp();
    CorpusWriter corpus{fs::path(argv[1])};
    writeEntries(corpus);
    writeInvites(corpus);
    writeHandshakes(corpus);
    writeFrames(corpus);
    writeKeyFiles(corpus);
    writeRpc(corpus);
    std::printf("wrote %zu inputs under %s\n", corpus.written(), argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make-corpus: %s\n", e.what());
    return 1;
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "make-corpus: %s\n", e.getDescription().cStr());
    return 1;
  }
  return 0;
}
