// Catch2's main for every test executable: initialises libsodium and prints the random seed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "crypto/sodium.h"

int main(int argc, char* argv[]) {
  kith::crypto::init();
  Catch::Session session;
  int rc = session.applyCommandLine(argc, argv);
  if (rc != 0) return rc;
  return session.run();
}
