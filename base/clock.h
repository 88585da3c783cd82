// The wall clock, in one place: entry timestamps, invite expiry. Milliseconds since the Unix epoch.
#pragma once
#include <cstdint>

namespace kith {

int64_t nowMs();

}  // namespace kith
