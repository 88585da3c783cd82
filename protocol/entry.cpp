#include "protocol/entry.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/common.h>
#include <kj/exception.h>

#include <cstring>

#include "crypto/hash.h"
#include "specs/entry.capnp.h"

namespace kith::protocol {
namespace {

constexpr std::string_view SIGNATURE_DOMAIN = "kith/entry/v1";
constexpr std::string_view ID_DOMAIN = "kith/entry-id/v1";
constexpr std::string_view JOURNAL_DOMAIN = "kith/journal/v1";
constexpr std::string_view BODY_AD_DOMAIN = "kith/body/v1";
constexpr std::string_view ATTACHMENT_DOMAIN = "kith/attachment/v1";

capnp::ReaderOptions untrustedReaderOptions() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = READER_TRAVERSAL_WORDS_MAX;
  options.nestingLimit = READER_NESTING_MAX;
  return options;
}

kj::ArrayPtr<const kj::byte> view(ByteView b) { return {b.data(), b.size()}; }

Bytes signedMessage(ByteView entryBytes) {
  Bytes msg(SIGNATURE_DOMAIN.begin(), SIGNATURE_DOMAIN.end());
  msg.push_back(0);
  msg.insert(msg.end(), entryBytes.begin(), entryBytes.end());
  return msg;
}

Key32 key32(capnp::Data::Reader d, const char* field) {
  if (d.size() != 32) {
    throw EntryError(Rejection::MALFORMED, std::string("the entry's ") + field + " is not 32 bytes");
  }
  Key32 k;
  std::memcpy(k.data(), d.begin(), 32);
  return k;
}

void checkWraps(const std::vector<KeyWrap>& wraps) {
  if (wraps.size() > WRAPS_MAX) throw EntryError(Rejection::TOO_LARGE, "too many key wraps");
}

void writeWraps(capnp::List<schema::KeyWrap>::Builder out, const std::vector<KeyWrap>& wraps) {
  for (size_t i = 0; i < wraps.size(); ++i) {
    out[i].setMember(view(wraps[i].member));
    out[i].setEpoch(wraps[i].epoch);
    out[i].setSealed(view(wraps[i].sealed));
  }
}

std::vector<KeyWrap> readWraps(capnp::List<schema::KeyWrap>::Reader in) {
  if (in.size() > WRAPS_MAX) throw EntryError(Rejection::TOO_LARGE, "too many key wraps");
  std::vector<KeyWrap> out;
  out.reserve(in.size());
  for (auto w : in) {
    KeyWrap k;
    k.member = key32(w.getMember(), "wrap member");
    k.epoch = w.getEpoch();
    auto sealed = w.getSealed();
    if (sealed.size() != 32 + crypto::SEALED_BOX_OVERHEAD_BYTES) {
      throw EntryError(Rejection::MALFORMED, "a key wrap has the wrong length");
    }
    k.sealed.assign(sealed.begin(), sealed.end());
    out.push_back(std::move(k));
  }
  return out;
}

Role roleFromSchema(schema::Role r) {
  switch (r) {
    case schema::Role::SUBSCRIBER:
      return Role::SUBSCRIBER;
    case schema::Role::COAUTHOR:
      return Role::COAUTHOR;
    case schema::Role::OWNER:
      return Role::OWNER;
    case schema::Role::RELAY:
      return Role::RELAY;
  }
  throw EntryError(Rejection::MALFORMED, "unknown member role");
}

Kind kindFromSchema(schema::Kind k) {
  switch (k) {
    case schema::Kind::UPDATE:
      return Kind::UPDATE;
    case schema::Kind::COMMENT:
      return Kind::COMMENT;
    case schema::Kind::HEART:
      return Kind::HEART;
    case schema::Kind::JOURNAL_INFO:
      return Kind::JOURNAL_INFO;
    case schema::Kind::RELAYS:
      return Kind::RELAYS;
    case schema::Kind::PROFILE:
      return Kind::PROFILE;
    case schema::Kind::WISH:
      return Kind::WISH;
    case schema::Kind::EDIT:
      return Kind::EDIT;
    case schema::Kind::DELETE:
      return Kind::DELETE;
    case schema::Kind::ASK:
      return Kind::ASK;
    case schema::Kind::CLAIM:
      return Kind::CLAIM;
    case schema::Kind::UNCLAIM:
      return Kind::UNCLAIM;
    case schema::Kind::DONE:
      return Kind::DONE;
    case schema::Kind::CANCEL:
      return Kind::CANCEL;
    case schema::Kind::CHUNK:
      return Kind::CHUNK;
  }
  throw EntryError(Rejection::MALFORMED, "unknown entry kind");
}

Entry parseEntry(ByteView entryBytes, ByteView signature);

// Reads the Entry struct's fields into `out` (all but signature, id and bytes).
void readEntry(schema::Entry::Reader e, Entry& out) {
  if (e.getVersion() != ENTRY_VERSION) {
    throw EntryError(Rejection::MALFORMED, "unknown entry version " + std::to_string(e.getVersion()));
  }
  out.journal = key32(e.getJournal(), "journal id");
  out.author = key32(e.getAuthor(), "author");
  out.seq = e.getSeq();
  if (out.seq == 0 || out.seq > SEQ_MAX) throw EntryError(Rejection::MALFORMED, "the entry's seq is out of range");
  out.prev = key32(e.getPrev(), "prev");
  out.timestampMs = e.getTimestamp();
  out.epoch = e.getEpoch();
  auto body = e.getBody();
  if (body.size() > BODY_BYTES_MAX) throw EntryError(Rejection::TOO_LARGE, "the entry's body is over the limit");
  if (body.size() != 0 && body.size() < crypto::AEAD_OVERHEAD_BYTES) {
    throw EntryError(Rejection::MALFORMED, "the entry's body is too short to be ciphertext");
  }
  out.body.assign(body.begin(), body.end());

  auto c = e.getControl();
  Control& ctl = out.control;
  switch (c.which()) {
    case schema::Control::NONE:
      ctl.type = Control::Type::NONE;
      break;
    case schema::Control::CREATE: {
      ctl.type = Control::Type::CREATE;
      auto create = c.getCreate();
      auto salt = create.getSalt();
      if (salt.size() != JOURNAL_SALT_BYTES) throw EntryError(Rejection::MALFORMED, "the journal salt is not 16 bytes");
      ctl.salt.assign(salt.begin(), salt.end());
      ctl.wraps = readWraps(create.getWraps());
      break;
    }
    case schema::Control::ADD_MEMBER: {
      ctl.type = Control::Type::ADD_MEMBER;
      auto add = c.getAddMember();
      ctl.member = key32(add.getMember(), "member");
      ctl.role = roleFromSchema(add.getRole());
      ctl.wraps = readWraps(add.getWraps());
      break;
    }
    case schema::Control::REMOVE_MEMBER: {
      ctl.type = Control::Type::REMOVE_MEMBER;
      auto remove = c.getRemoveMember();
      ctl.member = key32(remove.getMember(), "member");
      ctl.newEpoch = remove.getNewEpoch();
      ctl.lastSeq = remove.getLastSeq();
      if (ctl.lastSeq > SEQ_MAX) throw EntryError(Rejection::MALFORMED, "the removal's cut-off seq is out of range");
      ctl.wraps = readWraps(remove.getWraps());
      break;
    }
    default:
      throw EntryError(Rejection::MALFORMED, "unknown control entry type");
  }
}

// Rules about the values of a signed entry. They run after the signature check, so that damage
// in transit shows as a bad signature rather than as the author's fault.
void checkValues(const Entry& out) {
  if (out.epoch > EPOCHS_MAX) throw EntryError(Rejection::TOO_LARGE, "the entry's epoch is out of range");
  const Control& ctl = out.control;
  // A genesis binds the journal id to its owner: nobody else can claim to have created it.
  if (ctl.type == Control::Type::CREATE) {
    if (out.seq != 1 || out.epoch != 0) {
      throw EntryError(Rejection::BAD_GENESIS, "a journal's creation must be its owner's first entry, in epoch 0");
    }
    if (journalIdFor(out.author, ctl.salt) != out.journal) {
      throw EntryError(Rejection::BAD_GENESIS, "the journal id does not belong to the creating author");
    }
  }
}

}  // namespace

const char* roleName(Role role) {
  switch (role) {
    case Role::SUBSCRIBER:
      return "subscriber";
    case Role::COAUTHOR:
      return "coauthor";
    case Role::OWNER:
      return "owner";
    case Role::RELAY:
      return "relay";
  }
  return "unknown";
}

std::optional<Role> tryParseRole(std::string_view name) {
  for (Role r : {Role::SUBSCRIBER, Role::COAUTHOR, Role::OWNER, Role::RELAY}) {
    if (name == roleName(r)) return r;
  }
  return std::nullopt;
}

const char* kindName(Kind kind) {
  switch (kind) {
    case Kind::UPDATE:
      return "update";
    case Kind::COMMENT:
      return "comment";
    case Kind::HEART:
      return "heart";
    case Kind::JOURNAL_INFO:
      return "journal-info";
    case Kind::RELAYS:
      return "relays";
    case Kind::PROFILE:
      return "profile";
    case Kind::WISH:
      return "wish";
    case Kind::EDIT:
      return "edit";
    case Kind::DELETE:
      return "delete";
    case Kind::ASK:
      return "ask";
    case Kind::CLAIM:
      return "claim";
    case Kind::UNCLAIM:
      return "unclaim";
    case Kind::DONE:
      return "done";
    case Kind::CANCEL:
      return "cancel";
    case Kind::CHUNK:
      return "chunk";
  }
  return "unknown";
}

bool kindRefers(Kind kind) {
  switch (kind) {
    case Kind::COMMENT:
    case Kind::HEART:
    case Kind::EDIT:
    case Kind::DELETE:
    case Kind::CLAIM:
    case Kind::UNCLAIM:
    case Kind::DONE:
    case Kind::CANCEL:
      return true;
    default:
      return false;
  }
}

Key32 attachmentHash(ByteView bytes) { return crypto::hash(ATTACHMENT_DOMAIN, {bytes}); }

const char* rejectionName(Rejection r) {
  switch (r) {
    case Rejection::MALFORMED:
      return "malformed";
    case Rejection::TOO_LARGE:
      return "too-large";
    case Rejection::BAD_SIGNATURE:
      return "bad-signature";
    case Rejection::BAD_GENESIS:
      return "bad-genesis";
    case Rejection::BROKEN_CHAIN:
      return "broken-chain";
    case Rejection::FORK:
      return "fork";
    case Rejection::UNKNOWN_JOURNAL:
      return "unknown-journal";
    case Rejection::UNAUTHORISED:
      return "unauthorised";
    case Rejection::BAD_EPOCH:
      return "bad-epoch";
  }
  return "unknown";
}

JournalId journalIdFor(const PublicKey& owner, ByteView salt) { return crypto::hash(JOURNAL_DOMAIN, {owner, salt}); }

Bytes bodyAssociatedData(const JournalId& journal, const PublicKey& author, uint64_t seq, uint32_t epoch) {
  Bytes ad(BODY_AD_DOMAIN.begin(), BODY_AD_DOMAIN.end());
  ad.insert(ad.end(), journal.begin(), journal.end());
  ad.insert(ad.end(), author.begin(), author.end());
  putU64(ad, seq);
  putU32(ad, epoch);
  return ad;
}

namespace {

// A relays body names 1 to RELAYS_MAX relays, each with a host, a port other than 0 and a
// distinct key; every other kind names none.
void checkRelays(const Body& body) {
  if (body.kind != Kind::RELAYS) {
    if (!body.relays.empty()) throw EntryError(Rejection::MALFORMED, "only a relays entry may name relays");
    return;
  }
  if (body.relays.size() > RELAYS_MAX) {
    throw EntryError(Rejection::TOO_LARGE, "a journal may name at most " + std::to_string(RELAYS_MAX) + " relays");
  }
  for (size_t i = 0; i < body.relays.size(); ++i) {
    const RelayAddress& r = body.relays[i];
    if (r.host.empty() || r.host.size() > RELAY_HOST_BYTES_MAX || r.port == 0) {
      throw EntryError(Rejection::MALFORMED, "a relay's host or port is missing or too long");
    }
    for (char c : r.host) {
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        throw EntryError(Rejection::MALFORMED, "a relay's host has a character a host name cannot have");
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (body.relays[j].key == r.key) throw EntryError(Rejection::MALFORMED, "a relay is named twice");
    }
  }
}

bool hasControlByte(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

void checkAttachments(const Body& body) {
  if (body.attachments.empty()) return;
  if (body.kind != Kind::UPDATE && body.kind != Kind::COMMENT && body.kind != Kind::EDIT) {
    throw EntryError(Rejection::MALFORMED, "only an update, a comment or an edit may carry files");
  }
  if (body.attachments.size() > ATTACHMENTS_MAX) {
    throw EntryError(Rejection::TOO_LARGE, "an entry may carry at most " + std::to_string(ATTACHMENTS_MAX) + " files");
  }
  size_t chunks = 0;
  for (const Attachment& a : body.attachments) {
    if (a.name.empty() || a.name.size() > ATTACHMENT_NAME_BYTES_MAX || hasControlByte(a.name) ||
        a.name.find('/') != std::string::npos || a.name.find('\\') != std::string::npos || a.name == "." ||
        a.name == "..") {
      throw EntryError(Rejection::MALFORMED, "a file's name is empty, too long or names a folder");
    }
    if (a.mime.size() > ATTACHMENT_MIME_BYTES_MAX || hasControlByte(a.mime)) {
      throw EntryError(Rejection::MALFORMED, "a file's type is too long");
    }
    if (a.size == 0 || a.size > ATTACHMENT_BYTES_MAX) {
      throw EntryError(Rejection::TOO_LARGE, "a file is empty or over the limit of " +
                                                 std::to_string(ATTACHMENT_BYTES_MAX / (1024 * 1024)) + " MiB");
    }
    if (a.chunks.size() != (a.size + CHUNK_BYTES_MAX - 1) / CHUNK_BYTES_MAX) {
      throw EntryError(Rejection::MALFORMED, "a file names another number of pieces than its size needs");
    }
    chunks += a.chunks.size();
  }
  if (chunks > ATTACHMENT_CHUNKS_MAX) throw EntryError(Rejection::TOO_LARGE, "the files of one entry are too large");
}

// The fields a body's kind does not use are empty, and those it uses are within their limits.
void checkBody(const Body& body) {
  checkRelays(body);
  checkAttachments(body);
  if (body.heartOff && body.kind != Kind::HEART) throw EntryError(Rejection::MALFORMED, "only a heart is taken back");
  if (body.kind == Kind::ASK) {
    if (body.slots == 0 || body.slots > SLOTS_MAX) {
      throw EntryError(Rejection::MALFORMED, "a help request asks for 1 to " + std::to_string(SLOTS_MAX) + " people");
    }
    if (body.whenMs < 0) throw EntryError(Rejection::MALFORMED, "a help request's time is before 1970");
  } else if (body.slots != 0 || body.whenMs != 0) {
    throw EntryError(Rejection::MALFORMED, "only a help request has a time and a number of people");
  }
  if (body.kind == Kind::CHUNK) {
    if (body.data.empty() || body.data.size() > CHUNK_BYTES_MAX || !body.text.empty() || !body.refs.empty()) {
      throw EntryError(Rejection::MALFORMED,
                       "a file's piece holds 1 to " + std::to_string(CHUNK_BYTES_MAX) + " bytes and nothing else");
    }
  } else if (!body.data.empty()) {
    throw EntryError(Rejection::MALFORMED, "only a file's piece carries data");
  }
  if (body.kind == Kind::PROFILE &&
      (body.text.empty() || body.text.size() > NAME_BYTES_MAX || hasControlByte(body.text))) {
    throw EntryError(Rejection::MALFORMED, "a name is 1 to " + std::to_string(NAME_BYTES_MAX) + " bytes on one line");
  }
}

}  // namespace

Entry signEntry(const crypto::Identity& author, const EntryDraft& draft, std::optional<ByteView> epochKey) {
  KITH_ASSERT(draft.seq >= 1);
  checkWraps(draft.control.wraps);
  Bytes sealedBody;
  if (draft.body) {
    KITH_ASSERT(epochKey.has_value());
    const Body& body = *draft.body;
    if (body.text.size() > TEXT_BYTES_MAX) {
      throw EntryError(Rejection::TOO_LARGE, "the text is " + std::to_string(body.text.size()) +
                                                 " bytes, over the limit of " + std::to_string(TEXT_BYTES_MAX));
    }
    if (body.refs.size() > REFS_MAX) throw EntryError(Rejection::TOO_LARGE, "too many references");
    checkBody(body);
    capnp::MallocMessageBuilder bodyMessage;
    auto b = bodyMessage.initRoot<schema::Body>();
    b.setKind(static_cast<schema::Kind>(body.kind));
    b.setText(capnp::Text::Reader(body.text.data(), body.text.size()));
    auto refs = b.initRefs(static_cast<unsigned>(body.refs.size()));
    for (size_t i = 0; i < body.refs.size(); ++i) refs.set(static_cast<unsigned>(i), view(body.refs[i]));
    if (!body.relays.empty()) {
      auto relays = b.initRelays(static_cast<unsigned>(body.relays.size()));
      for (size_t i = 0; i < body.relays.size(); ++i) {
        auto r = relays[static_cast<unsigned>(i)];
        r.setHost(capnp::Text::Reader(body.relays[i].host.data(), body.relays[i].host.size()));
        r.setPort(body.relays[i].port);
        r.setKey(view(body.relays[i].key));
      }
    }
    b.setHeartOff(body.heartOff);
    b.setWhenMs(body.whenMs);
    b.setSlots(body.slots);
    if (!body.attachments.empty()) {
      auto list = b.initAttachments(static_cast<unsigned>(body.attachments.size()));
      for (size_t i = 0; i < body.attachments.size(); ++i) {
        const Attachment& a = body.attachments[i];
        auto out = list[static_cast<unsigned>(i)];
        out.setName(capnp::Text::Reader(a.name.data(), a.name.size()));
        out.setMime(capnp::Text::Reader(a.mime.data(), a.mime.size()));
        out.setSize(a.size);
        out.setHash(view(a.hash));
        auto chunks = out.initChunks(static_cast<unsigned>(a.chunks.size()));
        for (size_t c = 0; c < a.chunks.size(); ++c) chunks.set(static_cast<unsigned>(c), view(a.chunks[c]));
      }
    }
    if (!body.data.empty()) b.setData(view(body.data));
    kj::Array<capnp::word> plain = capnp::messageToFlatArray(bodyMessage);
    auto plainBytes = plain.asBytes();
    sealedBody = crypto::aeadSeal(*epochKey, {plainBytes.begin(), plainBytes.size()},
                                  bodyAssociatedData(draft.journal, author.publicKey(), draft.seq, draft.epoch));
    sodium_memzero(plainBytes.begin(), plainBytes.size());
    if (sealedBody.size() > BODY_BYTES_MAX)
      throw EntryError(Rejection::TOO_LARGE, "the entry's body is over the limit");
  }

  capnp::MallocMessageBuilder message;
  auto e = message.initRoot<schema::Entry>();
  e.setVersion(ENTRY_VERSION);
  e.setJournal(view(draft.journal));
  e.setAuthor(view(author.publicKey()));
  e.setSeq(draft.seq);
  e.setPrev(view(draft.prev));
  e.setTimestamp(draft.timestampMs);
  e.setEpoch(draft.epoch);
  auto c = e.initControl();
  const Control& ctl = draft.control;
  switch (ctl.type) {
    case Control::Type::NONE:
      c.setNone();
      break;
    case Control::Type::CREATE: {
      auto create = c.initCreate();
      create.setSalt(view(ctl.salt));
      writeWraps(create.initWraps(static_cast<unsigned>(ctl.wraps.size())), ctl.wraps);
      break;
    }
    case Control::Type::ADD_MEMBER: {
      auto add = c.initAddMember();
      add.setMember(view(ctl.member));
      add.setRole(static_cast<schema::Role>(ctl.role));
      writeWraps(add.initWraps(static_cast<unsigned>(ctl.wraps.size())), ctl.wraps);
      break;
    }
    case Control::Type::REMOVE_MEMBER: {
      auto remove = c.initRemoveMember();
      remove.setMember(view(ctl.member));
      remove.setNewEpoch(ctl.newEpoch);
      remove.setLastSeq(ctl.lastSeq);
      writeWraps(remove.initWraps(static_cast<unsigned>(ctl.wraps.size())), ctl.wraps);
      break;
    }
  }
  e.setBody(view(sealedBody));

  kj::Array<capnp::word> canonical = capnp::canonicalize(e.asReader());
  auto bytes = canonical.asBytes();
  if (bytes.size() > ENTRY_BYTES_MAX) {
    throw EntryError(Rejection::TOO_LARGE, "the entry is " + std::to_string(bytes.size()) +
                                               " bytes, over the limit of " + std::to_string(ENTRY_BYTES_MAX));
  }
  Bytes entryBytes(bytes.begin(), bytes.end());
  crypto::Signature sig = author.sign(signedMessage(entryBytes));
  // Parsing our own output checks that what we sign is what every reader will accept; the
  // signature was just made with the author's key, so verifying it again would only cost time.
  Entry entry = parseEntry(entryBytes, sig);
  checkValues(entry);
  return entry;
}

namespace {

// Parses and checks everything but the signature; the id is computed.
Entry parseEntry(ByteView entryBytes, ByteView signature) {
  if (entryBytes.size() > ENTRY_BYTES_MAX) throw EntryError(Rejection::TOO_LARGE, "the entry is over the size limit");
  if (entryBytes.empty() || entryBytes.size() % sizeof(capnp::word) != 0) {
    throw EntryError(Rejection::MALFORMED, "the entry is not a whole number of 8-byte words");
  }
  if (signature.size() != crypto::SIGNATURE_BYTES)
    throw EntryError(Rejection::MALFORMED, "the signature is not 64 bytes");
  Entry out;
  try {
    // Copy into word-aligned memory: the input may be at any address.
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(entryBytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), entryBytes.data(), entryBytes.size());
    kj::ArrayPtr<const capnp::word> segments[1] = {words.asPtr()};
    capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments, 1), untrustedReaderOptions());
    if (!reader.isCanonical()) throw EntryError(Rejection::MALFORMED, "the entry is not in canonical form");
    readEntry(reader.getRoot<schema::Entry>(), out);
  } catch (const kj::Exception& e) {
    throw EntryError(Rejection::MALFORMED, std::string("the entry cannot be parsed: ") + e.getDescription().cStr());
  }
  std::memcpy(out.signature.data(), signature.data(), crypto::SIGNATURE_BYTES);
  out.bytes.assign(entryBytes.begin(), entryBytes.end());
  out.id = crypto::hash(ID_DOMAIN, {out.bytes});
  return out;
}

}  // namespace

Entry decodeEntry(ByteView entryBytes, ByteView signature) {
  Entry out = parseEntry(entryBytes, signature);
  // The signature is checked after the cheap checks but before anything trusts the content.
  if (!crypto::verify(out.author, signedMessage(out.bytes), signature)) {
    throw EntryError(Rejection::BAD_SIGNATURE, "the entry's signature does not verify");
  }
  checkValues(out);
  return out;
}

std::optional<Body> openBody(const Entry& entry, ByteView epochKey) {
  if (entry.body.empty()) return std::nullopt;
  auto plain =
      crypto::aeadOpen(epochKey, entry.body, bodyAssociatedData(entry.journal, entry.author, entry.seq, entry.epoch));
  if (!plain) return std::nullopt;
  // The plaintext is wiped however this ends, a malformed body included.
  KJ_DEFER(if (!plain->empty()) sodium_memzero(plain->data(), plain->size()));
  Body out;
  try {
    // An empty body also stops here: its data() is null, which memcpy must not get.
    if (plain->empty() || plain->size() % sizeof(capnp::word) != 0) {
      throw EntryError(Rejection::MALFORMED, "the body is empty or not whole words");
    }
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(plain->size() / sizeof(capnp::word));
    std::memcpy(words.begin(), plain->data(), plain->size());
    KJ_DEFER(sodium_memzero(words.begin(), words.asBytes().size()));
    capnp::FlatArrayMessageReader reader(words, untrustedReaderOptions());
    auto b = reader.getRoot<schema::Body>();
    out.kind = kindFromSchema(b.getKind());
    auto text = b.getText();
    if (text.size() > TEXT_BYTES_MAX) throw EntryError(Rejection::TOO_LARGE, "the body's text is over the limit");
    out.text.assign(text.begin(), text.size());
    auto refs = b.getRefs();
    if (refs.size() > REFS_MAX) throw EntryError(Rejection::TOO_LARGE, "the body has too many references");
    for (auto r : refs) out.refs.push_back(key32(r, "reference"));
    auto relays = b.getRelays();
    if (relays.size() > RELAYS_MAX) throw EntryError(Rejection::TOO_LARGE, "the body names too many relays");
    for (auto r : relays) {
      auto host = r.getHost();
      out.relays.push_back(
          RelayAddress{std::string(host.begin(), host.size()), r.getPort(), key32(r.getKey(), "relay key")});
    }
    out.heartOff = b.getHeartOff();
    out.whenMs = b.getWhenMs();
    out.slots = b.getSlots();
    auto attachments = b.getAttachments();
    if (attachments.size() > ATTACHMENTS_MAX) throw EntryError(Rejection::TOO_LARGE, "the body carries too many files");
    for (auto a : attachments) {
      Attachment att;
      auto name = a.getName();
      auto mime = a.getMime();
      if (name.size() > ATTACHMENT_NAME_BYTES_MAX || mime.size() > ATTACHMENT_MIME_BYTES_MAX) {
        throw EntryError(Rejection::MALFORMED, "a file's name or type is too long");
      }
      att.name.assign(name.begin(), name.size());
      att.mime.assign(mime.begin(), mime.size());
      att.size = a.getSize();
      att.hash = key32(a.getHash(), "file hash");
      auto chunks = a.getChunks();
      if (chunks.size() > ATTACHMENT_CHUNKS_MAX) throw EntryError(Rejection::TOO_LARGE, "a file has too many pieces");
      for (auto c : chunks) att.chunks.push_back(key32(c, "file piece"));
      out.attachments.push_back(std::move(att));
    }
    auto data = b.getData();
    if (data.size() > CHUNK_BYTES_MAX) throw EntryError(Rejection::TOO_LARGE, "a file's piece is over the limit");
    out.data.assign(data.begin(), data.end());
    checkBody(out);
  } catch (const kj::Exception& e) {
    throw EntryError(Rejection::MALFORMED, std::string("the body cannot be parsed: ") + e.getDescription().cStr());
  }
  return out;
}

Bytes packEntry(const Entry& entry) {
  Bytes out(entry.signature.begin(), entry.signature.end());
  out.insert(out.end(), entry.bytes.begin(), entry.bytes.end());
  return out;
}

Entry decodePackedEntry(ByteView packed) {
  if (packed.size() < crypto::SIGNATURE_BYTES) throw EntryError(Rejection::MALFORMED, "a stored entry is truncated");
  return decodeEntry(packed.subspan(crypto::SIGNATURE_BYTES), packed.first(crypto::SIGNATURE_BYTES));
}

Entry unpackEntry(ByteView packed) {
  if (packed.size() < crypto::SIGNATURE_BYTES) throw EntryError(Rejection::MALFORMED, "a stored entry is truncated");
  Entry out = parseEntry(packed.subspan(crypto::SIGNATURE_BYTES), packed.first(crypto::SIGNATURE_BYTES));
  checkValues(out);
  return out;
}

}  // namespace kith::protocol
