// The seed of a randomised test: KITH_TEST_SEED when set (to replay a failure), else a fresh
// random one. Printed on stderr either way, with the variable that replays it, so that a failing
// run in CI can be repeated exactly.
#pragma once
#include <cstdint>
#include <string_view>

namespace kith::test {

// `what` names the test (or the part of it) in the printed line. A test seeding a 32-bit engine
// (std::mt19937) may pass the seed as it is: the engine keeps its low 32 bits, and so does a replay.
uint64_t testSeed(std::string_view what);

}  // namespace kith::test
