// Tests for KJ's event loop on libuv: timers, idling without spinning, cross-thread wake-ups,
// signals, run() mode, failures inside libuv callbacks, and a clean teardown.

#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <vector>

#include <kj/async.h>
#include <kj/debug.h>
#include <catch2/catch.hpp>

#include "node/uv/uv-event-port.h"
#include "tests/support/kj-exception.h"

namespace kith::node {
namespace {

using kith::test::expectKjException;

size_t countActive(uv_loop_t& loop, uv_handle_type type) {
  struct Query {
    uv_handle_type type;
    size_t count;
  } query{type, 0};
  uv_walk(
      &loop,
      [](uv_handle_t* handle, void* arg) {
        auto* q = static_cast<Query*>(arg);
        if (handle->type == q->type && uv_is_active(handle) && !uv_is_closing(handle)) ++q->count;
      },
      &query);
  return query.count;
}

double threadCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_THREAD, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

constexpr double IDLE_WAIT_SECONDS = 0.2;
constexpr double IDLE_CPU_SECONDS_MAX = IDLE_WAIT_SECONDS / 4;
// A spinning loop burns about as much CPU as the wait lasts; an idle one almost none.

}  // namespace

TEST_CASE("timers fire in deadline order and arm the libuv timer", "[node][uv]") {
  UvIoContext io;
  auto& timer = io.getTimer();
  auto& ws = io.getWaitScope();
  std::vector<int> fired;

  // Eager, so each continuation runs when its timer fires rather than when the join collects it.
  auto all = kj::joinPromises(
      kj::arr(timer.afterDelay(30 * kj::MILLISECONDS).then([&]() { fired.push_back(30); }).eagerlyEvaluate(nullptr),
              timer.afterDelay(10 * kj::MILLISECONDS).then([&]() { fired.push_back(10); }).eagerlyEvaluate(nullptr),
              timer.afterDelay(20 * kj::MILLISECONDS).then([&]() { fired.push_back(20); }).eagerlyEvaluate(nullptr)));
  // The pending timer is what keeps libuv from returning at once (trap 1).
  CHECK(countActive(io.getUvLoop(), UV_TIMER) == 1);
  all.wait(ws);
  CHECK(fired == std::vector<int>{10, 20, 30});
  // Nothing pending: the libuv timer is disarmed rather than left to wake us.
  CHECK(countActive(io.getUvLoop(), UV_TIMER) == 0);
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("a new earliest deadline re-arms the libuv timer", "[node][uv]") {
  UvIoContext io;
  auto& timer = io.getTimer();
  auto& ws = io.getWaitScope();
  auto late = timer.afterDelay(60 * kj::SECONDS);
  auto early = timer.afterDelay(5 * kj::MILLISECONDS);
  // If the libuv timer stayed armed for the late deadline, this wait would last a minute and both
  // promises would then be ready.
  early.wait(ws);
  CHECK_FALSE(late.poll(ws));
  late = nullptr;  // Promises go before the loop does.
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("a timer set from inside run() wakes the loop", "[node][uv]") {
  UvIoContext io;
  auto& timer = io.getTimer();
  int value = io.getPort().runUntil(
      kj::evalLater([&]() { return timer.afterDelay(10 * kj::MILLISECONDS); }).then([]() { return 7; }),
      io.getWaitScope());
  CHECK(value == 7);
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("an idle wait does not spin", "[node][uv]") {
  UvIoContext io;
  auto& timer = io.getTimer();
  auto delay = static_cast<int64_t>(IDLE_WAIT_SECONDS * 1000) * kj::MILLISECONDS;

  SECTION("under promise.wait()") {
    double before = threadCpuSeconds();
    timer.afterDelay(delay).wait(io.getWaitScope());
    double used = threadCpuSeconds() - before;
    INFO("CPU seconds used during an idle wait: " << used);
    CHECK(used < IDLE_CPU_SECONDS_MAX);
  }
  SECTION("under run()") {
    double before = threadCpuSeconds();
    io.getPort().runUntil(timer.afterDelay(delay), io.getWaitScope());
    double used = threadCpuSeconds() - before;
    INFO("CPU seconds used during an idle run(): " << used);
    CHECK(used < IDLE_CPU_SECONDS_MAX);
  }
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("another thread wakes the loop through kj::Executor", "[node][uv]") {
  constexpr int CALLS = 100;
  UvIoContext io;
  const kj::Executor& executor = kj::getCurrentThreadExecutor();
  auto paf = kj::newPromiseAndFulfiller<int>();
  int calls = 0;  // Only touched on the loop thread, through the executor.

  std::thread worker([&]() {
    for (int i = 0; i < CALLS; ++i) {
      executor.executeSync([&]() {
        if (++calls == CALLS) paf.fulfiller->fulfill(kj::cp(calls));
      });
    }
  });

  SECTION("under promise.wait()") { CHECK(paf.promise.wait(io.getWaitScope()) == CALLS); }
  SECTION("under run()") { CHECK(io.getPort().runUntil(kj::mv(paf.promise), io.getWaitScope()) == CALLS); }
  worker.join();
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("SIGINT and SIGTERM resolve onShutdownSignal()", "[node][uv]") {
  UvIoContext io;
  auto& ws = io.getWaitScope();

  SECTION("under promise.wait()") {
    auto signal = onShutdownSignal(io.getPort());
    raise(SIGTERM);
    CHECK(signal.wait(ws) == SIGTERM);
  }
  SECTION("under run(), as the daemon uses it") {
    auto signal = onShutdownSignal(io.getPort());
    // Raised from a KJ event, once run() is going.
    auto raiser = kj::evalLater([]() { raise(SIGINT); }).eagerlyEvaluate(nullptr);
    CHECK(io.getPort().runUntil(kj::mv(signal), ws) == SIGINT);
  }
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("stop() ends run() and work queued meanwhile still runs later", "[node][uv]") {
  UvIoContext io;
  auto& port = io.getPort();
  auto& ws = io.getWaitScope();
  bool ran = false;
  auto stopper = kj::evalLater([&]() { port.stop(); }).eagerlyEvaluate(nullptr);
  port.run(ws);
  auto later = kj::evalLater([&]() { ran = true; });
  later.wait(ws);
  CHECK(ran);
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("runUntil() rethrows the promise's exception", "[node][uv]") {
  UvIoContext io;
  auto exception = expectKjException([&]() {
    io.getPort().runUntil(kj::evalLater([]() -> kj::Promise<void> { return KJ_EXCEPTION(FAILED, "task failed"); }),
                          io.getWaitScope());
  });
  CHECK(exception.getDescription() == "task failed");
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("an exception in a libuv callback surfaces from wait() and run()", "[node][uv]") {
  UvIoContext io;
  auto& port = io.getPort();
  auto timer = UvHandle<uv_timer_t>::make(io.getUvLoop(), "timer", uv_timer_init);
  timer->data = &port;
  uv_timer_start(
      timer.get(),
      [](uv_timer_t* handle) {
        auto& port = *static_cast<UvEventPort*>(handle->data);
        runUvCallback(port, []() { KJ_FAIL_REQUIRE("boom in a callback"); });
      },
      0, 0);

  SECTION("under promise.wait()") {
    auto exception = expectKjException([&]() { kj::NEVER_DONE.wait(io.getWaitScope()); });
    CHECK_THAT(exception.getDescription().cStr(), Catch::Contains("boom in a callback"));
  }
  SECTION("under run()") {
    auto exception = expectKjException([&]() { port.run(io.getWaitScope()); });
    CHECK_THAT(exception.getDescription().cStr(), Catch::Contains("boom in a callback"));
  }
  timer.close();
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("promise.wait() from a libuv callback is refused, not re-entered", "[node][uv]") {
  UvIoContext io;
  struct Context {
    UvEventPort* port;
    kj::WaitScope* ws;
  } context{&io.getPort(), &io.getWaitScope()};
  auto timer = UvHandle<uv_timer_t>::make(io.getUvLoop(), "timer", uv_timer_init);
  timer->data = &context;
  // Started from a KJ event inside run(), so that it fires from libuv's own timer phase rather than
  // inside run()'s first poll (where KJ itself would refuse the wait() first).
  auto starter = io.getTimer()
                     .afterDelay(kj::MILLISECONDS)
                     .then([&]() {
                       uv_timer_start(
                           timer.get(),
                           [](uv_timer_t* handle) {
                             auto* context = static_cast<Context*>(handle->data);
                             // A wait that must block: KJ reaches the port's wait(), which refuses to nest uv_run.
                             runUvCallback(*context->port, [context]() { kj::NEVER_DONE.wait(*context->ws); });
                           },
                           0, 0);
                     })
                     .eagerlyEvaluate(nullptr);
  auto exception = expectKjException([&]() { context.port->run(*context.ws); });
  CHECK_THAT(exception.getDescription().cStr(), Catch::Contains("not re-entrant"));
  starter = nullptr;
  timer.close();
  REQUIRE_NOTHROW(io.shutdown());
}

TEST_CASE("shutdown closes every handle and names a leaked one", "[node][uv]") {
  UvIoContext io;
  // A timer promise dropped at the end of its life must not leave anything behind.
  io.getTimer().afterDelay(kj::MILLISECONDS).wait(io.getWaitScope());
  auto pending = io.getTimer().afterDelay(kj::SECONDS);
  pending = nullptr;

  // A handle nobody closes: shutdown must refuse and say what it is.
  uv_timer_t leaked;
  REQUIRE(uv_timer_init(&io.getUvLoop(), &leaked) == 0);
  auto exception = expectKjException([&]() { io.shutdown(); });
  CHECK_THAT(exception.getDescription().cStr(), Catch::Contains("timer"));
  CHECK(io.getLoop().countOpenHandles() == 1);

  uv_close(reinterpret_cast<uv_handle_t*>(&leaked), nullptr);
  REQUIRE_NOTHROW(io.shutdown());
  CHECK(io.getLoop().countOpenHandles() == 0);
}

}  // namespace kith::node
