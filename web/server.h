// The household's web page server (specs/web-api.md): KJ's HTTP server on the node's own libuv
// loop (node/uv/), one listener, sign-in and the request guards of web/guard.h, the page's
// embedded files, the JSON API of web/api.h, and server-sent events when the store changes.
//
// Threading: the loop thread only, like the UvEventPort it runs on.
// Caveats:
// - Every request is checked in this order: Host (421), Origin on POST (403), session (401 for
//   /api/), CSRF token on POST /api/ (403).
// - A request's handler runs on the loop: posting a large photo holds the node for as long as the
//   store takes to write it (tens of milliseconds); invite and accept run as child processes.
#pragma once
#include <list>
#include <memory>
#include <string>

#include <kj/async.h>
#include <kj/compat/http.h>
#include <spdlog/spdlog.h>

#include "node/replicator.h"
#include "node/uv/uv-stream.h"
#include "web/api.h"
#include "web/guard.h"

namespace kith::web {

struct WebOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;       // 0: the OS chooses (tests)
  std::string loginsPath;  // HOME/web-logins
};

class WebServer final : public node::ChangeListener, private kj::TaskSet::ErrorHandler {
public:
  WebServer(node::UvEventPort& port, Household household, WebOptions options, spdlog::logger& log);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // Binds and starts serving; throws Error(IO) naming the address when it cannot.
  void start();
  uint16_t port() const;
  // "127.0.0.1:7401"
  std::string address() const;

  // The store changed: the page's event streams are told (after WEB_EVENT_DELAY_MS).
  void storeChanged() override;

  size_t eventStreams() const { return streams_.size(); }

private:
  class Service;
  struct Stream;

  kj::Promise<void> acceptLoop();
  void taskFailed(kj::Exception&& exception) override;
  kj::Promise<bool> nextEvent(Stream& stream);
  void tellStreams();

  node::UvEventPort& port_;
  WebOptions options_;
  spdlog::logger& log_;
  std::vector<std::string> hosts_;
  LoginTokens logins_;
  Sessions sessions_;
  Api api_;
  std::list<Stream*> streams_;  // oldest first
  bool eventScheduled_ = false;
  size_t connections_ = 0;
  kj::Own<kj::HttpHeaderTable> headerTable_;
  struct Headers {
    kj::HttpHeaderId cookie, origin, csrf, setCookie;
  } ids_;
  kj::Own<Service> service_;
  kj::Own<kj::HttpServer> http_;
  kj::Own<node::UvListener> listener_;
  kj::TaskSet tasks_;
};

}  // namespace kith::web
