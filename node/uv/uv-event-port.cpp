// KJ's event loop on libuv; see uv-event-port.h.

#include "node/uv/uv-event-port.h"

#include <csignal>

#include <kj/debug.h>
#include <kj/vector.h>

namespace kith::node {

UvEventPort::UvEventPort(uv_loop_t& loop)
    : loop(loop), wakeHandle(UvHandle<uv_async_t>::make(loop, "cannot create the wake-up handle", uv_async_init,
                                                        &UvEventPort::onWake)),
      timerHandle(UvHandle<uv_timer_t>::make(loop, "cannot create the timer handle", uv_timer_init)),
      idleHandle(UvHandle<uv_idle_t>::make(loop, "cannot create the idle handle", uv_idle_init)),
      prepareHandle(UvHandle<uv_prepare_t>::make(loop, "cannot create the prepare handle", uv_prepare_init)),
      clock(kj::systemPreciseMonotonicClock()), timerImpl(clock.now()), timer(*this), kjLoop(*this) {
  wakeHandle->data = this;
  timerHandle->data = this;
  idleHandle->data = this;
  prepareHandle->data = this;
  // A write to a socket the peer reset must fail with EPIPE, not kill the process (KJ's own event
  // port does the same). Process-wide, and never undone: nothing in kith wants SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
}

UvEventPort::~UvEventPort() noexcept(false) {
  // kjLoop is destroyed first, then the timer, then the handles (closed, freed by the next uv_run).
  KJ_ASSERT(runScope == nullptr, "UvEventPort destroyed while run() is on the stack") { break; }
}

// ---------------------------------------------------------------------------------------------
// kj::EventPort

bool UvEventPort::wait() {
  KJ_REQUIRE(!insideUvRun, "promise.wait() called from inside a libuv callback; uv_run is not re-entrant");
  // An active idle handle makes uv_run(UV_RUN_ONCE) poll with a zero timeout: KJ would call wait()
  // again at once, a busy spin. It is only started by run(), but never let it survive into here.
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(idleHandle.get()))) { uv_idle_stop(idleHandle.get()); }
  runUvOnce(UV_RUN_ONCE);
  advanceTimer();
  rethrowCallbackFailure();
  return consumeWake();
}

bool UvEventPort::poll() {
  if (insideUvRun) {
    // KJ's WaitScope::poll(), called by runKjWork() from inside run()'s uv_run: libuv is already
    // polling, so only report timers and the wake flag (the Executor drains its queue on true).
    advanceTimer();
    return consumeWake();
  }
  runUvOnce(UV_RUN_NOWAIT);
  advanceTimer();
  rethrowCallbackFailure();
  return consumeWake();
}

void UvEventPort::setRunnable(bool) { updateIdle(); }

void UvEventPort::wake() const {
  // Any thread. The flag is set before the send so the woken loop thread always sees it.
  woken.store(true);
  uv_async_send(wakeHandle.get());
}

// ---------------------------------------------------------------------------------------------
// run() mode

void UvEventPort::run(kj::WaitScope& waitScope) {
  KJ_REQUIRE(!insideUvRun, "run() called from inside a libuv callback; uv_run is not re-entrant");
  KJ_REQUIRE(runScope == nullptr, "run() is already running");
  stopRequested = false;
  // Also checks that we are not inside a KJ event (KJ refuses to poll from one), and runs what is
  // already due before libuv takes over; that may already call stop().
  waitScope.poll();
  if (stopRequested) return;
  runScope = &waitScope;
  KJ_DEFER(runScope = nullptr; uv_idle_stop(idleHandle.get()); uv_prepare_stop(prepareHandle.get()));

  // KJ only calls setRunnable() when its cached state changes, and WaitScope::poll() (used above
  // and in runKjWork()) can leave that cache saying "runnable" over an empty queue; an event armed
  // from a libuv callback would then never start the idle handle. The prepare handle checks the
  // queue itself before every blocking poll.
  uv_prepare_start(prepareHandle.get(), &UvEventPort::onPrepare);
  advanceTimer();
  updateIdle();
  while (!stopRequested && callbackFailure == nullptr) {
    runUvOnce(UV_RUN_DEFAULT);
    // The wake-up handle is always active and referenced, so libuv only returns on uv_stop();
    // if it ever returned for lack of work, looping would spin.
    KJ_ASSERT(stopRequested || callbackFailure != nullptr || uv_loop_alive(&loop),
              "libuv loop has nothing left that could wake it");
  }
  rethrowCallbackFailure();
}

void UvEventPort::stop() {
  stopRequested = true;
  // Outside run() (in its first poll, say), uv_stop() would make some later uv_run() return early.
  if (runScope != nullptr) uv_stop(&loop);
}

void UvEventPort::updateIdle() {
  uv_idle_t* idle = idleHandle.get();
  bool active = uv_is_active(reinterpret_cast<uv_handle_t*>(idle));
  bool wanted = runScope != nullptr && (kjLoop.isRunnable() || woken.load());
  if (wanted && !active) {
    uv_idle_start(idle, &UvEventPort::onIdle);
  } else if (!wanted && active) {
    uv_idle_stop(idle);
  }
}

void UvEventPort::runKjWork() {
  if (runScope == nullptr) {
    updateIdle();
    return;
  }
  advanceTimer();
  if (woken.load()) {
    // Another thread queued work through kj::Executor. Its queue is drained only by KJ's own
    // wait()/poll(): WaitScope::poll() reaches it through poll() above, which must not call uv_run
    // again from here. Unbounded, but only as long as the cross-thread cascade.
    runScope->poll();
  } else {
    kjLoop.run(UV_KJ_EVENTS_PER_ITERATION_MAX);
  }
  updateIdle();
}

void UvEventPort::runUvOnce(uv_run_mode mode) {
  insideUvRun = true;
  KJ_DEFER(insideUvRun = false);
  uv_run(&loop, mode);
}

// ---------------------------------------------------------------------------------------------
// Timers

void UvEventPort::advanceTimer() {
  timerImpl.advanceTo(clock.now());
  armTimer();
}

void UvEventPort::armTimer() {
  uv_timer_t* handle = timerHandle.get();
  KJ_IF_MAYBE(next, timerImpl.nextEvent()) {
    KJ_IF_MAYBE(armed, armedDeadline) {
      if (*armed == *next && uv_is_active(reinterpret_cast<uv_handle_t*>(handle))) return;
    }
    kj::TimePoint now = clock.now();
    uint64_t timeoutMs = 0;
    if (*next > now) {
      // Round up: libuv firing before the deadline costs a spurious wake-up and a re-arm.
      timeoutMs = (*next - now + kj::MILLISECONDS - 1 * kj::NANOSECONDS) / kj::MILLISECONDS;
    }
    // libuv counts the timeout from its cached loop time, which may be stale inside a callback.
    uv_update_time(&loop);
    uv_timer_start(handle, &UvEventPort::onTimer, timeoutMs, 0);
    armedDeadline = *next;
  } else if (armedDeadline != nullptr) {
    uv_timer_stop(handle);
    armedDeadline = nullptr;
  }
}

kj::TimePoint UvEventPort::UvTimer::now() const { return port.timerImpl.now(); }

kj::Promise<void> UvEventPort::UvTimer::atTime(kj::TimePoint time) {
  auto promise = port.timerImpl.atTime(time);
  // A new earliest deadline must re-arm libuv's timer now: nothing else would wake the loop for it.
  port.armTimer();
  return promise;
}

kj::Promise<void> UvEventPort::UvTimer::afterDelay(kj::Duration delay) { return atTime(port.timerImpl.now() + delay); }

// ---------------------------------------------------------------------------------------------
// Callbacks and failures

void UvEventPort::reportCallbackFailure(kj::Exception&& exception) {
  if (callbackFailure == nullptr) {
    callbackFailure = kj::mv(exception);
  } else {
    KJ_LOG(ERROR, "further exception in a libuv callback", exception);
  }
  // Make run() (or the current uv_run) return so the failure surfaces promptly.
  uv_stop(&loop);
}

void UvEventPort::rethrowCallbackFailure() {
  KJ_IF_MAYBE(exception, callbackFailure) {
    kj::Exception failure = kj::mv(*exception);
    callbackFailure = nullptr;
    kj::throwFatalException(kj::mv(failure));
  }
}

void UvEventPort::onWake(uv_async_t* handle) {
  auto* port = static_cast<UvEventPort*>(handle->data);
  if (port == nullptr) return;
  // In run() mode, schedule runKjWork(), which drains the Executor; under promise.wait(), returning
  // from uv_run is enough: wait() reports the flag to KJ.
  runUvCallback(*port, [port]() { port->updateIdle(); });
}

void UvEventPort::onTimer(uv_timer_t* handle) {
  auto* port = static_cast<UvEventPort*>(handle->data);
  if (port == nullptr) return;
  runUvCallback(*port, [port]() { port->advanceTimer(); });
}

void UvEventPort::onPrepare(uv_prepare_t* handle) {
  auto* port = static_cast<UvEventPort*>(handle->data);
  if (port == nullptr) return;
  runUvCallback(*port, [port]() { port->updateIdle(); });
}

void UvEventPort::onIdle(uv_idle_t* handle) {
  auto* port = static_cast<UvEventPort*>(handle->data);
  if (port == nullptr) return;
  runUvCallback(*port, [port]() { port->runKjWork(); });
}

// ---------------------------------------------------------------------------------------------
// Signals

namespace {

class SignalWatcher {
  // Adapter behind onSignal(): owns one uv_signal_t per signal for as long as the promise exists.

public:
  SignalWatcher(kj::PromiseFulfiller<int>& fulfiller, UvEventPort& port, kj::ArrayPtr<const int> signums)
      : fulfiller(fulfiller), port(port) {
    for (int signum : signums) {
      auto handle = UvHandle<uv_signal_t>::make(port.getUvLoop(), "cannot create a signal handle", uv_signal_init);
      handle->data = this;
      uvCheck(uv_signal_start(handle.get(), &SignalWatcher::onSignal, signum), kj::str("cannot watch signal ", signum));
      handles.add(kj::mv(handle));
    }
  }

private:
  kj::PromiseFulfiller<int>& fulfiller;
  UvEventPort& port;
  kj::Vector<UvHandle<uv_signal_t>> handles;

  static void onSignal(uv_signal_t* handle, int signum) {
    auto* self = static_cast<SignalWatcher*>(handle->data);
    if (self == nullptr) return;
    runUvCallback(self->port, [self, signum]() { self->fulfiller.fulfill(kj::cp(signum)); });
  }
};

constexpr int SHUTDOWN_SIGNALS[] = {SIGINT, SIGTERM};

}  // namespace

kj::Promise<int> onSignal(UvEventPort& port, kj::ArrayPtr<const int> signums) {
  KJ_REQUIRE(signums.size() > 0, "onSignal() needs at least one signal");
  return kj::newAdaptedPromise<int, SignalWatcher>(port, signums);
}

kj::Promise<int> onShutdownSignal(UvEventPort& port) {
  return onSignal(port, kj::arrayPtr(SHUTDOWN_SIGNALS, kj::size(SHUTDOWN_SIGNALS)));
}

// ---------------------------------------------------------------------------------------------
// UvIoContext

UvIoContext::UvIoContext()
    : port(kj::heap<UvEventPort>(loop.get())),
      waitScope(kj::heap<kj::WaitScope>(KJ_ASSERT_NONNULL(port)->getKjLoop())) {}

UvIoContext::~UvIoContext() noexcept {
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions([this]() { shutdown(); })) {
    KJ_LOG(ERROR, "unclean libuv shutdown", *exception);
  }
}

UvEventPort& UvIoContext::getPort() {
  KJ_IF_MAYBE(p, port) { return **p; }
  KJ_FAIL_REQUIRE("UvIoContext was shut down");
}

kj::WaitScope& UvIoContext::getWaitScope() {
  KJ_IF_MAYBE(ws, waitScope) { return **ws; }
  KJ_FAIL_REQUIRE("UvIoContext was shut down");
}

void UvIoContext::shutdown() {
  KJ_IF_MAYBE(ws, waitScope) {
    // Objects dropped just before shutdown may have queued their last events (cancellations,
    // close-outs): let them run while the loop is still whole.
    KJ_IF_MAYBE(exception, kj::runCatchingExceptions([ws]() { (*ws)->poll(); })) {
      KJ_LOG(ERROR, "exception while draining KJ events at shutdown", *exception);
    }
    waitScope = nullptr;
  }
  if (port != nullptr) {
    KJ_IF_MAYBE(exception, kj::runCatchingExceptions([this]() { port = nullptr; })) {
      KJ_LOG(ERROR, "exception while destroying the event port", *exception);
    }
  }
  loop.close();
}

}  // namespace kith::node
