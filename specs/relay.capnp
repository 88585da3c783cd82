# kith's relay RPC: what a household node says to a relay (specs/relay.md is the normative prose).
# Spoken over the same Noise transport as member-to-member replication (specs/transport.md), with
# Cap'n Proto's two-party RPC; the relay serves a `Relay` as its bootstrap capability and asks the
# client for nothing. A client dials with a fresh transport key for every connection, so that the
# relay cannot link one person's connections across mailboxes.
#
# Nothing here names a journal, an author, a seq or a member: a mailbox is a 32-byte id that only
# members can compute, and an envelope is opaque bytes of one of a few sizes.

@0xd3b0f6c1a2e94b57;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("kith::relayrpc");

interface Relay {
  create @0 (id :Data, credential :Data, admin :Data, token :Data) -> ();
  # Opens a new mailbox. `id` (32 bytes) names it; `credential` (a 32-byte Ed25519 public key) is
  # what `open` must prove; `admin` (a 32-byte Ed25519 public key) is what `rotate` and `remove`
  # must prove. `token` is an operator-issued access token (empty on an open relay). A mailbox that
  # exists already with the same credential and admin is not an error (creating is idempotent);
  # with other keys it is refused ("mailbox exists").

  open @1 (id :Data, proof :Data) -> (mailbox :Mailbox);
  # The mailbox, to a client that proves the credential: `proof` is the credential's Ed25519
  # signature of relayProof("open", relay key, the client's transport key for this connection, id)
  # (specs/relay.md, "Proofs"). Unknown ids and bad proofs get the same refusal.

  rotate @2 (id :Data, proof :Data, newId :Data, newCredential :Data) -> ();
  # The journal moved to a new epoch: closes mailbox `id` (puts refused from then on, gets still
  # answered until it expires) and creates `newId` with `newCredential` and the same admin key and
  # token. `proof` is the admin key's signature of relayProof("rotate", relay key, transport key,
  # id || newId || newCredential). Rotating to a mailbox that exists with these keys is a no-op.

  remove @3 (id :Data, proof :Data) -> ();
  # Deletes the mailbox and its envelopes now. `proof`: the admin key's signature of
  # relayProof("remove", relay key, transport key, id).

  status @4 () -> (admission :Text, version :UInt16);
  # "open" or "token", and the relay protocol version (1). Asks for nothing.
}

interface Mailbox {
  put @0 (envelopes :List(Data)) -> (cursor :UInt64, stored :UInt32);
  # Stores envelopes (each of one of the sizes of specs/relay.md, at most 65,644 bytes; at most 2,048
  # per call, and 1 MiB plus one largest envelope). An envelope the mailbox holds already (the same
  # bytes) is not stored again. Answers the mailbox's last cursor and how many were new. Refused,
  # with nothing stored, when the mailbox is closed ("mailbox closed") or the call would take it
  # past its quota ("mailbox full: ...").

  get @1 (after :UInt64, wait :Bool) -> (envelopes :List(Envelope), cursor :UInt64, closed :Bool);
  # The envelopes stored after cursor `after`, oldest first: at most 1,536 and about 1 MiB. With
  # `wait` and nothing to answer, the answer waits until an envelope arrives, the mailbox is
  # closed, or 5 minutes pass (then empty). `cursor` is the last cursor the answer covers (`after`
  # when empty); `closed` says the mailbox was rotated away (what it still holds is answered
  # first). A cursor older than what retention kept answers from the oldest kept.
}

struct Envelope {
  cursor @0 :UInt64;  # the relay's own order: increasing within a mailbox, never reused
  data @1 :Data;
}
