# kith's journal entry format. specs/entry.md is the normative prose for this schema: which fields
# are in the clear and why, how the signature and the id are computed, and the size limits.
@0xc043ce0ba93ef026;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("kith::schema");

struct SignedEntry {
  # An entry as it is stored and sent: the Entry's canonical bytes and the author's signature.
  entry @0 :Data;
  # Cap'n Proto's canonical encoding of an `Entry` as a single segment without a segment table
  # (the root pointer, then the content); readers refuse any other encoding.
  signature @1 :Data;
  # Ed25519 (64 bytes) by the entry's author over "kith/entry/v1" || 0x00 || entry.
}

struct Entry {
  # Everything here is signed. Only what replication and authorisation need is in the clear; the
  # content is in `body`, encrypted under the journal's epoch key.
  version @0 :UInt8;        # entry format version; 2 (specs/entry.md, "Format versions")
  journal @1 :Data;         # 32 bytes: BLAKE2b-256("kith/journal/v1", owner || salt)
  author @2 :Data;          # 32 bytes: the author's Ed25519 public key
  seq @3 :UInt64;           # the author's sequence number in this journal, from 1, no gaps
  prev @4 :Data;            # 32 bytes: id of the author's entry seq-1; 32 zero bytes when seq = 1
  timestamp @5 :Int64;      # milliseconds since the Unix epoch, by the author's clock
  epoch @6 :UInt32;         # which epoch key encrypts `body`
  control @7 :Control;      # membership changes, in the clear (relays enforce them too)
  body @8 :Data;            # 24-byte nonce || XChaCha20-Poly1305(Body); empty for control-only entries
}

struct Control {
  union {
    none @0 :Void;
    create @1 :Create;
    addMember @2 :AddMember;
    removeMember @3 :RemoveMember;
  }
}

enum Role {
  subscriber @0;   # reads; comments and hearts
  coauthor @1;     # reads; posts updates; comments and hearts
  owner @2;        # everything, and the only one who changes membership
  relay @3;        # stores and serves ciphertext; holds no epoch key; authors nothing
}

struct KeyWrap {
  member @0 :Data;  # 32 bytes: the member's Ed25519 public key
  epoch @1 :UInt32;
  sealed @2 :Data;  # crypto_box_seal of the 32-byte epoch key to the member's X25519 key
}

struct Create {
  # The journal's genesis: seq 1 of its owner, epoch 0. `journal` must equal
  # BLAKE2b-256("kith/journal/v1", author || salt), which binds the id to the owner.
  salt @0 :Data;               # 16 random bytes
  wraps @1 :List(KeyWrap);     # epoch 0's key, wrapped to the owner
}

struct AddMember {
  member @0 :Data;             # 32 bytes: Ed25519 public key
  role @1 :Role;               # subscriber, coauthor or relay
  wraps @2 :List(KeyWrap);     # every epoch key so far, wrapped to the new member (none for a relay)
}

struct RemoveMember {
  member @0 :Data;             # 32 bytes
  newEpoch @1 :UInt32;         # the epoch this removal starts: the previous epoch + 1
  wraps @2 :List(KeyWrap);     # the new epoch's key, wrapped to every remaining non-relay member
  lastSeq @3 :UInt64;          # the cut-off: the removed member's last seq in the owner's store when
                               # it wrote the removal (0: none). Every node keeps the member's entries
                               # up to it, whenever they arrive, and refuses or drops those after it.
}

enum Kind {
  update @0;        # an update by the owner or a co-author
  comment @1;       # a comment on an entry (refs[0])
  heart @2;         # a heart on an entry (refs[0])
  journalInfo @3;   # the journal's title (the first content entry of the owner)
  relays @4;        # the relays the journal uses (owner only): `relays` holds the whole list, and
                    # the owner's latest `relays` entry replaces every earlier one (specs/relay.md)
  profile @5;       # the author's display name (`text`); the author's latest profile replaces earlier ones
  wish @6;          # a well-wish in the journal's guestbook (`text`)
  edit @7;          # a new version of the author's own entry refs[0]: `text` and `attachments`
  delete @8;        # the author deletes its own entry refs[0]
  ask @9;           # a help request (owner, co-author): `text`, `whenMs`, `slots`
  claim @10;        # the author takes a slot of the request refs[0]
  unclaim @11;      # the author gives its slot of the request refs[0] back
  done @12;         # the request refs[0] is done (owner, co-author)
  cancel @13;       # the request refs[0] is cancelled (owner, co-author)
  chunk @14;        # one piece of an attachment (`data`); named by its entry id
}

struct Attachment {
  # A file (a photo) carried by an update, a comment or an edit: its bytes are in `chunk` entries of
  # the same journal, encrypted like every body, named here by their entry ids in order.
  name @0 :Text;            # the file's name as the author gave it (no folder), 1 to 255 bytes
  mime @1 :Text;            # its type as the author's node recognised it ("image/jpeg", ...)
  size @2 :UInt64;          # its length in bytes, 1 to ATTACHMENT_BYTES_MAX
  hash @3 :Data;            # 32 bytes: BLAKE2b-256("kith/attachment/v1", the file's bytes)
  chunks @4 :List(Data);    # 32-byte ids of its chunk entries, in order
}

struct RelayAddress {
  # A relay as members dial it: a host (a numeric address or a DNS name), a port, and the relay's
  # Ed25519 transport key.
  host @0 :Text;
  port @1 :UInt16;
  key @2 :Data;     # 32 bytes
}

struct Body {
  # The plaintext inside `Entry.body`. Encrypted with the associated data
  # "kith/body/v1" || journal || author || seq (u64 big-endian) || epoch (u32 big-endian).
  kind @0 :Kind;
  text @1 :Text;
  refs @2 :List(Data);   # 32-byte ids of the entries this one refers to
  relays @3 :List(RelayAddress);  # kind `relays` only: at most 8; empty in every other kind
  heartOff @4 :Bool;              # kind `heart`: takes the author's heart on refs[0] back
  whenMs @5 :Int64;               # kind `ask`: when the help is needed (ms since 1970; 0: not said)
  slots @6 :UInt16;               # kind `ask`: how many people it needs, 1 to SLOTS_MAX
  attachments @7 :List(Attachment);  # kinds `update`, `comment`, `edit`: at most ATTACHMENTS_MAX
  data @8 :Data;                  # kind `chunk`: 1 to CHUNK_BYTES_MAX bytes of an attachment
}
