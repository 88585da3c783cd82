// The node layer's limits: every batch, queue and timer of replication and the transport.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include <kj/exception.h>

namespace kith::node {

// Entries and entry bytes in one push or fetch (specs/rpc.capnp).
constexpr size_t BATCH_ENTRIES_MAX = 512;
constexpr size_t BATCH_BYTES_MAX = size_t{1} << 20;
// Pushes a subscription may have outstanding: enough to keep every verifying core of the receiver
// busy while answers travel back (the send-queue limit below bounds their bytes).
constexpr unsigned PUSHES_IN_FLIGHT_MAX = 4;
// Received signatures are verified on a pool of worker threads (node/verify-pool.h): one per core,
// at most VERIFY_THREADS_MAX; a batch is cut into chunks of VERIFY_CHUNK_ENTRIES that any worker
// may take; at most VERIFY_QUEUE_ENTRIES_MAX entries wait for or are under verification at once
// (a batch beyond that waits its turn before its bytes are handed over).
constexpr unsigned VERIFY_THREADS_MAX = 8;
constexpr size_t VERIFY_CHUNK_ENTRIES = 64;
constexpr size_t VERIFY_QUEUE_ENTRIES_MAX = 8192;
// Verified batches (of every peer) are committed in the order they arrived, together, in one write
// transaction per loop turn of at most COMMIT_ENTRIES_MAX entries (store::APPEND_BATCH_MAX).
constexpr size_t COMMIT_ENTRIES_MAX = 4096;
// Fetches `kith sync` keeps in flight per journal (at most FETCHES_WAITING_MAX, so that a peer
// never refuses one) while catching up.
constexpr size_t SYNC_FETCHES_IN_FLIGHT = 4;
// Subscriptions one connection may hold on this node (each holds a version vector of up to
// HEADS_MAX heads, about 50 KiB at most).
constexpr size_t SUBSCRIPTIONS_PER_PEER_MAX = 256;
// What one connection may make this node hold, whatever the peer does. Cap'n Proto queues every
// message we send to a peer (answers to its calls, our pushes) until the socket takes it; a peer
// that never reads would make that queue grow without end. So, per connection:
// - reading the peer's calls pauses while more than SEND_QUEUE_PAUSE_READ_BYTES wait to be sent
//   (an honest peer reads, and never makes us hold that much: see the two limits below);
constexpr size_t SEND_QUEUE_PAUSE_READ_BYTES = size_t{4} << 20;
// - a subscription sends its next push only while less than SEND_QUEUE_PUSH_BYTES wait;
constexpr size_t SEND_QUEUE_PUSH_BYTES = size_t{1} << 20;
// - a fetch is answered only while less than SEND_QUEUE_FETCH_BYTES wait; until then it waits,
//   and at most FETCHES_WAITING_MAX fetches of one connection wait (more are refused at once).
constexpr size_t SEND_QUEUE_FETCH_BYTES = size_t{2} << 20;
constexpr size_t FETCHES_WAITING_MAX = 4;
static_assert(SYNC_FETCHES_IN_FLIGHT <= FETCHES_WAITING_MAX, "a syncing peer must never have a fetch refused");
// Incoming call parameters (in 8-byte words) not yet answered before the RPC system stops reading
// from the peer: bounds what a flood of calls can make us hold.
constexpr size_t RPC_FLOW_LIMIT_WORDS = (size_t{8} << 20) / 8;
// The largest RPC message we read (a push of BATCH_BYTES_MAX plus framing), in words.
constexpr uint64_t RPC_MESSAGE_WORDS_MAX = (BATCH_BYTES_MAX + BATCH_ENTRIES_MAX * 128 + 65536) / 8;
// Peers connected at once (sessions of members, configured peers and followed owners).
constexpr size_t PEERS_MAX = 256;
// A handshake must complete within this time, or the connection is dropped.
constexpr unsigned HANDSHAKE_TIMEOUT_MS = 10000;
// Inbound handshakes in progress at once (each holds about 100 KiB: buffers and guarded pages).
// When a new connection comes and the pool is full, the oldest unfinished handshake is dropped:
// an honest peer finishes in one round trip, a stalled one is the oldest.
constexpr size_t HANDSHAKES_IN_FLIGHT_MAX = 64;
// While an invite is open, a key that is not a member may connect to redeem it. Such redeemers
// live in their own pool, apart from PEERS_MAX: at most REDEEMERS_MAX at once; they are served
// nothing but `redeemInvite`, and each connection is closed REDEEMER_LINGER_MS after its
// redeemInvite was answered, or REDEEMER_LIFETIME_MS after it was accepted, whichever comes first.
// A new redeemer beyond REDEEMERS_MAX drops the oldest (an honest one redeems within a round trip).
constexpr size_t REDEEMERS_MAX = 16;
constexpr unsigned REDEEMER_LIFETIME_MS = 30000;
constexpr unsigned REDEEMER_LINGER_MS = 1000;
// Handshakes dropped (pool full) logged in full: the first, then every HANDSHAKES_DROPPED_LOG_EVERY-th.
constexpr unsigned HANDSHAKES_DROPPED_LOG_EVERY = 100;
// `kith serve` learns of commits by other processes (`kith post`) from a watch on the store's data
// file. It also looks every STORE_SAFETY_POLL_MS in case the file system does not report changes,
// and every STORE_POLL_MS when the watch could not be set up at all.
constexpr unsigned STORE_SAFETY_POLL_MS = 30000;
constexpr unsigned STORE_POLL_MS = 100;
// A commit by another process is written to the data file a moment before readers can see it, and
// nothing is written when it becomes visible: the watch then looks again after
// STORE_PUBLISH_RECHECK_MS, doubling up to STORE_PUBLISH_RECHECK_MAX_MS while it still is not.
constexpr unsigned STORE_PUBLISH_RECHECK_MS = 1;
constexpr unsigned STORE_PUBLISH_RECHECK_MAX_MS = 1000;
// Dial backoff: first retry, cap, and jitter (a fraction of the delay, both ways).
constexpr unsigned DIAL_BACKOFF_INITIAL_MS = 500;
constexpr unsigned DIAL_BACKOFF_MAX_MS = 60000;
constexpr double DIAL_BACKOFF_JITTER = 0.25;
// A long-running loop of `kith serve` (store watch, accept, dial, rescan) whose turn failed logs
// the failure and goes on after a delay that starts here and doubles per consecutive failure up to
// the cap; it never stops for good.
constexpr unsigned LOOP_RETRY_INITIAL_MS = 100;
constexpr unsigned LOOP_RETRY_MAX_MS = 30000;
// Consecutive failures of one loop logged in full; after that one line per LOOP_FAILURES_LOG_EVERY.
constexpr unsigned LOOP_FAILURES_LOGGED = 3;
constexpr unsigned LOOP_FAILURES_LOG_EVERY = 100;
// How often `kith serve` frees the reader slots of processes that died mid-read (killed `kith read`).
constexpr unsigned STALE_READERS_CHECK_MS = 60000;
// Journals a peer may list in one answer to `journals` (64 × protocol::MEMBERS_MAX).
constexpr size_t JOURNALS_LISTED_MAX = 16384;
// Heads (authors) of one journal in a version vector a peer sends: four times the members a
// journal may have at once (protocol::MEMBERS_MAX), for members removed and added over time.
constexpr size_t HEADS_MAX = 1024;
// The Cap'n Proto nesting depth we read from a peer (our schemas nest a few levels).
constexpr int RPC_NESTING_MAX = 32;
// Failed dials to one peer logged in full: the first, then every DIAL_FAILURES_LOG_EVERY-th.
constexpr unsigned DIAL_FAILURES_LOG_EVERY = 10;
// Rejected entries logged per batch (the rest are counted).
constexpr unsigned REJECTIONS_LOGGED_PER_BATCH = 3;

// A kj exception whose description is exactly `what` (KJ_EXCEPTION would add "name = value").
inline kj::Exception nodeException(kj::Exception::Type type, const std::string& what) {
  return kj::Exception(type, __FILE__, __LINE__, kj::heapString(what.c_str()));
}

// Relays, a member's side (node/relay-link.h; the relay's own limits are node/relay-limits.h).
// Envelopes per put and their bytes (the relay refuses more: specs/relay.capnp).
constexpr size_t RELAY_PUT_ENVELOPES_MAX = 2048;
constexpr size_t RELAY_PUT_BYTES_MAX = size_t{1} << 20;
// Entries received through a relay before what they depend on, kept to try again, and how often.
constexpr size_t RELAY_PENDING_ENTRIES_MAX = 4096;
constexpr unsigned RELAY_PENDING_TRIES_MAX = 8;
// Epochs one `kith sync` through a relay follows the journal into (each removal is one).
constexpr unsigned RELAY_SYNC_EPOCH_MOVES_MAX = 4;
// After a relay refused a put (mailbox full), no put to it for this long (pulling goes on).
constexpr unsigned RELAY_REFUSED_RETRY_MS = 60000;

}  // namespace kith::node
