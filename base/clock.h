// The wall clock, in one place: entry timestamps, invite expiry. Milliseconds since the Unix epoch.
#pragma once
#include <cstdint>
#include <string>

namespace kith {

int64_t nowMs();

// "2026-12-02T12:51:41.830Z": a time in ms since the epoch as ISO 8601 UTC with milliseconds, as
// the CLI's --json and the web page's API give times.
std::string isoTime(int64_t ms);

}  // namespace kith
