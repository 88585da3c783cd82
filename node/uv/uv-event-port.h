// KJ's event loop driven by libuv: a `kj::EventPort` over a `uv_loop_t`, a `kj::Timer` on a
// `uv_timer_t`, shutdown signals as a promise, and `UvIoContext`, which builds and tears down the
// whole stack in the one order that works.
//
// Two ways to drive the loop, both on the thread that built the context:
// - `promise.wait(waitScope)`: KJ drives, calling the port's wait()/poll(), which run one libuv
//   iteration at a time (blocking only when KJ has nothing queued). libuv is only polled once KJ's
//   queue is empty (or every N events, with `waitScope.setBusyPollInterval(N)`). Tests use this.
// - `port.run(waitScope)` / `port.runUntil(promise, waitScope)`: libuv drives (`uv_run` as the
//   main loop) and runs KJ's queued events from an idle handle, at most
//   UV_KJ_EVENTS_PER_ITERATION_MAX per libuv iteration, so sockets and signals keep being served
//   while KJ is busy.
//
// Production (the daemon) uses the second:
//
//     UvIoContext io;
//     ... start listeners, dialers and RPC on io.getPort() ...
//     int signum = io.getPort().runUntil(onShutdownSignal(io.getPort()), io.getWaitScope());
//     ... drop RPC objects, then io.shutdown() (or let ~UvIoContext do it) ...
//
// Threading: one UvEventPort per thread and loop. Everything but wake() (which KJ's Executor calls)
// must be called on the loop's thread. Use `kj::getCurrentThreadExecutor()` from the loop thread
// to hand work in from other threads.
//
// Caveats:
// - Never call `promise.wait()` or run() from inside a libuv callback: uv_run is not re-entrant.
//   The port asserts this as soon as such a wait would block (KJ itself refuses a wait() from
//   inside a KJ event).
// - An exception thrown inside one of our libuv callbacks is never let through libuv's C frames: it
//   is recorded with reportCallbackFailure() and rethrown from the wait()/poll()/run() that ran the
//   callback.
// - The timer keeps libuv alive only while a timer promise is pending. A cancelled timer promise
//   can leave the uv timer armed for its old deadline: one spurious wake-up, no busy loop.
// - Timer precision is one millisecond (libuv's); a timer never fires early.
// - In run(), work another thread sends through kj::Executor is drained with WaitScope::poll(),
//   which runs until KJ's queue is empty: that turn is not bounded by
//   UV_KJ_EVENTS_PER_ITERATION_MAX.
// - Teardown order: drop everything using the loop, poll, destroy the WaitScope, destroy the port,
//   run libuv until every handle is closed, close the loop. UvIoContext does exactly this.

#pragma once

#include <atomic>
#include <type_traits>

#include <kj/async.h>
#include <kj/debug.h>
#include <kj/timer.h>

#include "node/uv/uv-loop.h"

namespace kith::node {

constexpr kj::uint UV_KJ_EVENTS_PER_ITERATION_MAX = 1024;
// In run(), KJ events run per libuv iteration before libuv polls for I/O again. Bounds how long a
// burst of KJ work can delay sockets, timers and signals.

class UvEventPort final : public kj::EventPort {
  // Owns the `kj::EventLoop` (get it with getKjLoop() to build a `kj::WaitScope`), a
  // `kj::TimerImpl` and four libuv handles: an async (cross-thread wake), a timer, and an idle and
  // a prepare that are active only in run(). The `uv_loop_t` is borrowed and must outlive the port
  // and the port's closed handles (see UvLoop).

public:
  explicit UvEventPort(uv_loop_t& loop);
  ~UvEventPort() noexcept(false);
  KJ_DISALLOW_COPY(UvEventPort);

  uv_loop_t& getUvLoop() { return loop; }
  kj::EventLoop& getKjLoop() { return kjLoop; }

  kj::Timer& getTimer() { return timer; }
  // A timer whose atTime()/afterDelay() arm the libuv timer, so a pending timer keeps the loop
  // running. Its now() is the time KJ's events started running, as kj::TimerImpl's.

  void run(kj::WaitScope& waitScope);
  // Runs libuv as the main loop until stop(), running KJ's events in between. `waitScope` must be
  // the scope of getKjLoop(). Rethrows the first exception recorded from a libuv callback (after
  // stopping). Not from inside a KJ event or libuv callback.

  void stop();
  // Makes run() return after the current libuv iteration. Loop thread only (from a KJ event,
  // typically). A stop() before run() started is forgotten: run() clears it on entry.

  template <typename T>
  T runUntil(kj::Promise<T>&& promise, kj::WaitScope& waitScope);
  // run() until `promise` settles; returns its value or rethrows its exception.

  void reportCallbackFailure(kj::Exception&& exception);
  // For code in node/ whose libuv callback caught an exception (see runUvCallback()): the first one
  // is rethrown from wait()/poll()/run(); later ones are logged.

  // kj::EventPort ---------------------------------------------------------------------------------
  bool wait() override;
  bool poll() override;
  void setRunnable(bool runnable) override;
  void wake() const override;

private:
  class UvTimer final : public kj::Timer {
  public:
    explicit UvTimer(UvEventPort& port) : port(port) {}
    kj::TimePoint now() const override;
    kj::Promise<void> atTime(kj::TimePoint time) override;
    kj::Promise<void> afterDelay(kj::Duration delay) override;

  private:
    UvEventPort& port;
  };

  uv_loop_t& loop;
  // Handles come before kjLoop: members are destroyed in reverse, so the EventLoop (and with it the
  // Executor that calls wake()) is gone before the async handle is closed.
  UvHandle<uv_async_t> wakeHandle;
  UvHandle<uv_timer_t> timerHandle;
  UvHandle<uv_idle_t> idleHandle;
  UvHandle<uv_prepare_t> prepareHandle;
  const kj::MonotonicClock& clock;
  kj::TimerImpl timerImpl;
  UvTimer timer;
  kj::Maybe<kj::TimePoint> armedDeadline;  // What timerHandle is armed for, if anything.
  mutable std::atomic<bool> woken{false};  // Set by wake(), consumed by wait()/poll().
  bool insideUvRun = false;                // True while uv_run() is on the stack.
  kj::WaitScope* runScope = nullptr;       // Non-null while run() is on the stack.
  bool stopRequested = false;
  kj::Maybe<kj::Exception> callbackFailure;
  kj::EventLoop kjLoop;

  void advanceTimer();
  void armTimer();
  void updateIdle();
  void runKjWork();
  void rethrowCallbackFailure();
  bool consumeWake() { return woken.exchange(false); }
  void runUvOnce(uv_run_mode mode);

  static void onWake(uv_async_t* handle);
  static void onTimer(uv_timer_t* handle);
  static void onIdle(uv_idle_t* handle);
  static void onPrepare(uv_prepare_t* handle);
};

template <typename Func>
void runUvCallback(UvEventPort& port, Func&& body) noexcept {
  // Runs the body of a libuv callback. An exception must never unwind through libuv's C frames, so
  // one thrown here is handed to the port, which rethrows it where KJ can see it.
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions(kj::fwd<Func>(body))) {
    port.reportCallbackFailure(kj::mv(*exception));
  }
}

kj::Promise<int> onSignal(UvEventPort& port, kj::ArrayPtr<const int> signums);
// Resolves with the number of the first of `signums` delivered to the process after this call.
// While the promise exists, libuv's handlers replace the default action for those signals; when it
// is dropped (or has resolved and been consumed), the default action is back, so a second Ctrl-C
// during a slow shutdown ends the process. Throws FAILED if a handler cannot be installed.

kj::Promise<int> onShutdownSignal(UvEventPort& port);
// onSignal() for SIGINT and SIGTERM: the daemon's clean-shutdown trigger.

class UvIoContext {
  // The whole stack for one thread: a UvLoop, a UvEventPort on it, and the thread's WaitScope.
  // Declare it before anything that uses the loop, so it is destroyed after them.

public:
  UvIoContext();
  ~UvIoContext() noexcept;  // shutdown(); a failure is logged (and the loop leaked).
  KJ_DISALLOW_COPY(UvIoContext);

  UvEventPort& getPort();
  kj::WaitScope& getWaitScope();
  kj::Timer& getTimer() { return getPort().getTimer(); }
  uv_loop_t& getUvLoop() { return loop.get(); }
  UvLoop& getLoop() { return loop; }

  void shutdown();
  // Every promise, stream and listener made on this context must be gone by now (KJ's rule for
  // its EventLoop; a timer promise outliving the port corrupts memory). Runs KJ's remaining
  // events, destroys the WaitScope and the port, then closes the loop. Throws FAILED naming the
  // libuv handles still open if an owner outlived the context; the loop is then kept (getUvLoop()
  // still works) and shutdown() may be called again. Idempotent.

private:
  UvLoop loop;
  kj::Maybe<kj::Own<UvEventPort>> port;
  kj::Maybe<kj::Own<kj::WaitScope>> waitScope;
};

// =============================================================================================
// Inline implementation

template <typename T>
T UvEventPort::runUntil(kj::Promise<T>&& promise, kj::WaitScope& waitScope) {
  using Result = std::conditional_t<std::is_void_v<T>, bool, T>;
  struct Outcome {
    kj::Maybe<Result> result;
    kj::Maybe<kj::Exception> failure;
  };
  auto outcome = kj::heap<Outcome>();
  Outcome* out = outcome.get();
  kj::Promise<void> settled =
      [&]() {
        if constexpr (std::is_void_v<T>) {
          return promise.then([out]() { out->result = true; });
        } else {
          return promise.then([out](T&& value) { out->result = kj::mv(value); });
        }
      }()
          .then([]() {}, [out](kj::Exception&& exception) { out->failure = kj::mv(exception); })
          .then([this]() { stop(); })
          .eagerlyEvaluate(nullptr);
  run(waitScope);
  KJ_IF_MAYBE(exception, out->failure) { kj::throwFatalException(kj::mv(*exception)); }
  KJ_IF_MAYBE(value, out->result) {
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return kj::mv(*value);
    }
  }
  KJ_FAIL_ASSERT("run() returned before the promise settled");
}

}  // namespace kith::node
