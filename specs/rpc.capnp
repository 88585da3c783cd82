# kith's replication RPC, spoken over the Noise transport (specs/transport.md) with Cap'n Proto's
# two-party RPC protocol. Both ends of a connection serve a `Node` as their bootstrap capability
# and ask for the other's: replication is symmetric. specs/replication.md is the normative prose.
@0xff32868c6625cb72;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("kith::rpc");

using Entry = import "entry.capnp";

struct Head {
  author @0 :Data;   # 32-byte Ed25519 public key
  seq @1 :UInt64;    # the last seq of this author held, in this journal
}

interface Node {
  # The bootstrap capability. The caller is the peer authenticated by the Noise handshake.

  journal @0 (id :Data) -> (journal :Journal);
  # The journal capability, only to an active member (any role, relay included) of that journal.
  # Anyone else gets an exception "not a member of this journal" and nothing else: not even
  # whether the journal exists here.

  journals @1 () -> (ids :List(Data));
  # The ids of the journals this node holds in which the caller is an active member.

  redeemInvite @2 (secret :Data) -> (journal :Data, role :Entry.Role);
  # Redeems a one-time invite (specs/invite.md): when the secret names an open invite here (not
  # used, not expired), the node adds the caller as a member with the invite's role (a signed
  # addMember entry with the epoch keys wrapped to the caller), marks the invite used, and answers
  # with the journal's id. Otherwise an exception says why: unknown, used or expired.
  #
  # A key that is no member and was let in only because an invite is open (an invite redeemer,
  # specs/replication.md) is served this call alone: `journal`, `journals` and `journalsChanged`
  # answer it with an exception, and the node closes the connection shortly after this call was
  # answered.

  journalsChanged @3 () -> ();
  # "The journals I share with you changed": the caller sends it when a journal it holds becomes
  # shared with the callee (a grant, an invite redeemed, a journal newly held), so that the callee
  # calls `journals` again and subscribes, with no polling. It carries nothing; the callee answers
  # at once and runs at most one `journals` call at a time whatever the rate of these calls. A
  # callee that does not know the method answers "unimplemented"; the caller ignores that.
}

interface EntrySink {
  push @0 (entries :List(Entry.SignedEntry)) -> (heads :List(Head));
  # Offers entries, in chain order per author, at most 512 entries and 1 MiB of entry bytes per
  # call. The whole call is refused ("not a member of this journal") when the receiver may not
  # replicate the journal with the caller (specs/replication.md, "Journals shared"). The receiver verifies each one (signature, chain, role, limits) and stores the accepted
  # ones in one write transaction. It answers with its heads for the authors of the batch, so
  # that the sender knows from where to go on (a refused entry stops that author's chain).
}

interface Journal extends(EntrySink) {
  heads @0 () -> (heads :List(Head));
  # The version vector: for each author, the last seq held.

  fetch @1 (author :Data, fromSeq :UInt64, limit :UInt32) -> (entries :List(Entry.SignedEntry));
  # The author's entries from `fromSeq` on, in order; at most min(limit, 512) entries and about
  # 1 MiB of entry bytes (always at least one entry if any exists). Fewer than asked for means
  # "call again from the next seq"; none means the caller is up to date for this author. The
  # answer waits while much is queued to the caller already; a caller with 4 fetches waiting gets
  # "too many fetches at once" (specs/replication.md, "What one connection may cost").

  subscribe @2 (have :List(Head), sink :EntrySink) -> (subscription :Subscription);
  # Live replication: the server pushes to `sink` every entry it holds beyond `have`, then every
  # new entry as it arrives, with at most two pushes in flight and batches read from its store
  # on demand, so that a slow subscriber costs it no unbounded memory. Dropping `subscription`
  # (or the connection) ends it.
}

interface Subscription {}
