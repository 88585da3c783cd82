// The web page's limits and defaults (specs/web-api.md names each).
#pragma once
#include <cstddef>
#include <cstdint>

namespace kith::web {

// Where `kith serve` serves the page unless --web says otherwise.
constexpr const char* WEB_DEFAULT_HOST = "127.0.0.1";
constexpr uint16_t WEB_DEFAULT_PORT = 7401;

// A sign-in token from `kith web` works once, within this long.
constexpr int64_t WEB_LOGIN_TTL_MS = 10 * 60 * 1000;
// Tokens kept in HOME/web-logins; a new one drops the oldest beyond this.
constexpr size_t WEB_LOGINS_MAX = 16;
// A session lasts this long from its last use, in the node's memory only.
constexpr int64_t WEB_SESSION_TTL_MS = 12 * 60 * 60 * 1000;
// Sessions at once; a new one ends the least recently used beyond this.
constexpr size_t WEB_SESSIONS_MAX = 32;

// A request's body (four 8 MiB photos as base64 in JSON, and the text).
constexpr size_t WEB_BODY_BYTES_MAX = 48 * 1024 * 1024;
// The body of POST /login (a token), which anyone on this machine may send.
constexpr size_t WEB_LOGIN_BODY_BYTES_MAX = 1024;
// How deeply a request's JSON may nest: deeper is refused before it is parsed (the parser
// recurses, and a body of 48 MiB of '[' would exhaust the stack).
constexpr size_t WEB_JSON_DEPTH_MAX = 16;
// Connections the page's server holds at once; more wait in the kernel's queue.
constexpr size_t WEB_CONNECTIONS_MAX = 64;
// Open event streams (/api/events); a new one closes the oldest beyond this.
constexpr size_t WEB_EVENT_STREAMS_MAX = 16;
// After a change, the streams are told at most this often.
constexpr unsigned WEB_EVENT_DELAY_MS = 250;
// A comment line on every stream this often, so that a dead page is noticed.
constexpr unsigned WEB_EVENT_KEEPALIVE_MS = 20 * 1000;

// `kith invite` and `kith accept` run for the page as child processes for at most this long.
constexpr unsigned WEB_CHILD_MS_MAX = 90 * 1000;
// What a child may print (its JSON answer and its error line).
constexpr size_t WEB_CHILD_OUTPUT_BYTES_MAX = 256 * 1024;
// One child at a time; a second request waits for none and is refused.
constexpr size_t WEB_CHILDREN_MAX = 1;

}  // namespace kith::web
