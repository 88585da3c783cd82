// Expecting a kj::Exception in tests of code built on KJ (the node layer's event loop and streams).
#pragma once
#include <kj/debug.h>
#include <kj/exception.h>
#include <catch2/catch.hpp>

namespace kith::test {

// The kj::Exception that `func` throws; fails the test when it throws none.
template <typename Func>
kj::Exception expectKjException(Func&& func) {
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions(kj::fwd<Func>(func))) { return kj::mv(*exception); }
  FAIL("expected a kj::Exception");
  KJ_UNREACHABLE;
}

}  // namespace kith::test
