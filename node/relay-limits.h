// The relay's limits (specs/relay.md): what one call, one connection and the whole relay may
// hold, and the defaults of the operator's settings (relay.json, `kith relay init`). Enforced at
// the edge, in node/relay-server.cpp; a client that passes one is refused with a reason, never
// asserted on.
#pragma once
#include <cstddef>
#include <cstdint>

#include "crypto/aead.h"
#include "node/limits.h"
#include "protocol/relay.h"
#include "store/relay-store.h"

namespace kith::node {

// One put: at most this many envelopes, and this many bytes of envelopes: what a member sends
// (RELAY_PUT_ENVELOPES_MAX, RELAY_PUT_BYTES_MAX in node/limits.h) and room for one largest envelope
// more (a client that fills up to 1 MiB may cross it with its last envelope).
constexpr size_t RELAY_ENVELOPES_PER_PUT_MAX = 2048;
constexpr size_t RELAY_PUT_ACCEPT_BYTES_MAX = RELAY_PUT_BYTES_MAX + protocol::ENVELOPE_BYTES_MAX;
static_assert(RELAY_PUT_ENVELOPES_MAX <= RELAY_ENVELOPES_PER_PUT_MAX, "the relay must take what members put");
// One get answers at most this many envelopes and about this many bytes (the first envelope is
// always answered, so one of ENVELOPE_BYTES_MAX passes it by less than its size).
constexpr size_t RELAY_GET_ENVELOPES_MAX = 1536;
constexpr size_t RELAY_GET_BYTES_MAX = size_t{1} << 20;
// A waiting get with nothing to answer answers empty after this long (the client asks again).
constexpr unsigned RELAY_GET_WAIT_MS = 300000;
// Mailbox capabilities one connection may hold open at once (each may have one waiting get).
constexpr size_t RELAY_MAILBOXES_OPEN_PER_CONNECTION_MAX = 64;
// Connections at once, whatever their address.
constexpr size_t RELAY_CONNECTIONS_MAX = 4096;
// What one connection may make the relay hold in answers not yet taken by its socket: reading its
// calls pauses above this (as PeerSession does with SEND_QUEUE_PAUSE_READ_BYTES).
constexpr size_t RELAY_SEND_QUEUE_PAUSE_READ_BYTES = size_t{4} << 20;
// The largest RPC message the relay reads: a put at RELAY_PUT_ACCEPT_BYTES_MAX with its framing.
constexpr uint64_t RELAY_RPC_MESSAGE_WORDS_MAX =
    (RELAY_PUT_ACCEPT_BYTES_MAX + RELAY_ENVELOPES_PER_PUT_MAX * 16 + 65536) / 8;
// A get's answer with its framing: what a relay client (reading up to RPC_MESSAGE_WORDS_MAX) reads.
constexpr uint64_t RELAY_GET_ANSWER_WORDS_MAX =
    (RELAY_GET_BYTES_MAX + protocol::ENVELOPE_BYTES_MAX + RELAY_GET_ENVELOPES_MAX * 32 + 4096) / 8;
static_assert(RELAY_GET_ANSWER_WORDS_MAX <= RPC_MESSAGE_WORDS_MAX,
              "a relay client (RPC_MESSAGE_WORDS_MAX) must read every answer the relay may send");
// Incoming call parameters not yet answered, per connection, before the RPC system stops reading.
constexpr size_t RELAY_RPC_FLOW_LIMIT_WORDS = (size_t{4} << 20) / 8;
// Retention runs this often (and once at start); nothing else wakes an idle relay.
constexpr unsigned RELAY_SWEEP_INTERVAL_MS = 3600 * 1000;
// `kith relay serve` writes its status file at most this often, and only after a change.
constexpr unsigned RELAY_STATUS_WRITE_INTERVAL_MS = 1000;
// A closed mailbox is deleted this many days after it was closed (the store applies it).
constexpr int64_t RELAY_CLOSED_KEEP_DAYS = store::RELAY_CLOSED_KEEP_DAYS;
// Refusals logged per connection in full; past that, one line per RELAY_REFUSALS_LOG_EVERY.
constexpr unsigned RELAY_REFUSALS_LOGGED_PER_CONNECTION = 20;
constexpr unsigned RELAY_REFUSALS_LOG_EVERY = 1000;

// Defaults of the operator's settings (relay.json).
constexpr const char* RELAY_DEFAULT_LISTEN = "127.0.0.1:7500";
constexpr store::RelayAdmission RELAY_DEFAULT_ADMISSION = store::RelayAdmission::OPEN;
constexpr uint64_t RELAY_DEFAULT_MAILBOX_QUOTA_BYTES = uint64_t{64} << 20;
constexpr uint64_t RELAY_DEFAULT_MAILBOX_QUOTA_ENVELOPES = 20000;
constexpr uint64_t RELAY_DEFAULT_DISK_CAP_BYTES = uint64_t{4} << 30;
constexpr uint64_t RELAY_DEFAULT_MAILBOXES_MAX = 10000;
constexpr size_t RELAY_DEFAULT_CONNECTIONS_PER_ADDRESS = 32;
constexpr uint32_t RELAY_DEFAULT_RETENTION_DAYS = 30;
// Tokens: how many mailboxes `kith relay token` allows by default.
constexpr uint32_t RELAY_DEFAULT_TOKEN_MAILBOXES = 1;

inline store::RelayPolicy defaultRelayPolicy() {
  store::RelayPolicy p;
  p.admission = RELAY_DEFAULT_ADMISSION;
  p.mailboxQuotaBytes = RELAY_DEFAULT_MAILBOX_QUOTA_BYTES;
  p.mailboxQuotaEnvelopes = RELAY_DEFAULT_MAILBOX_QUOTA_ENVELOPES;
  p.diskCapBytes = RELAY_DEFAULT_DISK_CAP_BYTES;
  p.mailboxesMax = RELAY_DEFAULT_MAILBOXES_MAX;
  p.retentionDays = RELAY_DEFAULT_RETENTION_DAYS;
  return p;
}

// True when `bytes` is the size of an envelope: one of protocol::ENVELOPE_BUCKETS sealed.
constexpr bool isEnvelopeSize(size_t bytes) {
  for (size_t bucket : protocol::ENVELOPE_BUCKETS) {
    if (bytes == bucket + crypto::AEAD_OVERHEAD_BYTES) return true;
  }
  return false;
}

}  // namespace kith::node
