// Fuzz target: entry decoding. The input is a packed entry, signature (64 bytes) || entry bytes, as
// the store keeps it and a peer sends it. decodeEntry must throw EntryError for anything it refuses
// and nothing else; an entry it accepts must encode again, field by field, to the very bytes it came
// from (the encoding is canonical, so two encodings of one entry would be a second entry id).
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>
#include <cstring>

#include "protocol/entry.h"
#include "specs/entry.capnp.h"
#include "tests/fuzz/fuzz-support.h"

namespace {

using namespace kith;
using kith::protocol::Control;

kj::ArrayPtr<const kj::byte> view(ByteView b) { return {b.data(), b.size()}; }

void writeWraps(capnp::List<schema::KeyWrap>::Builder out, const std::vector<protocol::KeyWrap>& wraps) {
  for (unsigned i = 0; i < wraps.size(); ++i) {
    out[i].setMember(view(wraps[i].member));
    out[i].setEpoch(wraps[i].epoch);
    out[i].setSealed(view(wraps[i].sealed));
  }
}

// Encodes the decoded fields again, independently of protocol/entry.cpp's encoder.
Bytes encodeAgain(const protocol::Entry& entry) {
  capnp::MallocMessageBuilder message;
  auto e = message.initRoot<schema::Entry>();
  e.setVersion(protocol::ENTRY_VERSION);
  e.setJournal(view(entry.journal));
  e.setAuthor(view(entry.author));
  e.setSeq(entry.seq);
  e.setPrev(view(entry.prev));
  e.setTimestamp(entry.timestampMs);
  e.setEpoch(entry.epoch);
  auto control = e.initControl();
  switch (entry.control.type) {
    case Control::Type::NONE:
      control.setNone();
      break;
    case Control::Type::CREATE: {
      auto c = control.initCreate();
      c.setSalt(view(entry.control.salt));
      writeWraps(c.initWraps(static_cast<unsigned>(entry.control.wraps.size())), entry.control.wraps);
      break;
    }
    case Control::Type::ADD_MEMBER: {
      auto c = control.initAddMember();
      c.setMember(view(entry.control.member));
      c.setRole(static_cast<schema::Role>(entry.control.role));
      writeWraps(c.initWraps(static_cast<unsigned>(entry.control.wraps.size())), entry.control.wraps);
      break;
    }
    case Control::Type::REMOVE_MEMBER: {
      auto c = control.initRemoveMember();
      c.setMember(view(entry.control.member));
      c.setNewEpoch(entry.control.newEpoch);
      c.setLastSeq(entry.control.lastSeq);
      writeWraps(c.initWraps(static_cast<unsigned>(entry.control.wraps.size())), entry.control.wraps);
      break;
    }
  }
  // As signEntry does: a control-only entry carries an empty body, not a null one.
  e.setBody(view(entry.body));
  auto words = capnp::canonicalize(e.asReader());
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kith::fuzz::setUp();
  ByteView input(data, size);
  size_t signatureBytes = std::min(size, crypto::SIGNATURE_BYTES);
  ByteView signature = input.first(signatureBytes);
  ByteView entryBytes = input.subspan(signatureBytes);
  protocol::Entry entry;
  try {
    entry = protocol::decodeEntry(entryBytes, signature);
  } catch (const protocol::EntryError&) { return 0; }
  if (!std::equal(entry.bytes.begin(), entry.bytes.end(), entryBytes.begin(), entryBytes.end())) {
    fuzz::contractBroken("entry", "the decoded entry keeps other bytes than it came from");
  }
  Bytes again = encodeAgain(entry);
  if (!std::equal(again.begin(), again.end(), entryBytes.begin(), entryBytes.end())) {
    fuzz::contractBroken("entry", "an accepted entry encodes to other bytes");
  }
  Bytes packed = protocol::packEntry(entry);
  if (!std::equal(packed.begin(), packed.end(), input.begin(), input.end())) {
    fuzz::contractBroken("entry", "packEntry of an accepted entry differs from its input");
  }
  if (protocol::unpackEntry(packed).id != entry.id) { fuzz::contractBroken("entry", "unpackEntry gives another id"); }
  return 0;
}
