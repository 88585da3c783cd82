#include "tests/support/seed.h"

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace kith::test {

uint64_t testSeed(std::string_view what) {
  uint64_t seed = 0;
  if (const char* env = std::getenv("KITH_TEST_SEED"); env != nullptr && *env != '\0') {
    seed = std::strtoull(env, nullptr, 10);
  } else {
    std::random_device device;
    seed = (uint64_t{device()} << 32) | device();
  }
  std::fprintf(stderr, "%s: seed %llu (KITH_TEST_SEED=%llu replays it)\n", std::string(what).c_str(),
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  return seed;
}

}  // namespace kith::test
