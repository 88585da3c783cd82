#include "web/server.h"

#include <kj/compat/url.h>

#include "base/clock.h"
#include "base/error.h"
#include "web/assets.h"
#include "web/limits.h"

namespace kith::web {
namespace {

using nlohmann::json;

constexpr const char* CSP =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const char* statusText(unsigned status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 421:
      return "Misdirected Request";
    case 502:
      return "Bad Gateway";
    default:
      return "Internal Server Error";
  }
}

// Every answer's security headers.
void secure(kj::HttpHeaders& h) {
  h.add("Content-Security-Policy", CSP);
  h.add("X-Content-Type-Options", "nosniff");
  h.add("Referrer-Policy", "no-referrer");
  h.add("X-Frame-Options", "DENY");
  h.add("Cache-Control", "no-store");
}

// Sends `body` (a std::string or Bytes, owned until the write is done).
template <typename Body>
kj::Promise<void> sendBytes(kj::HttpService::Response& response, unsigned status, kj::HttpHeaders& headers, Body body) {
  auto owned = kj::heap<Body>(std::move(body));
  auto out = response.send(status, statusText(status), headers, owned->size());
  auto written = out->write(owned->data(), owned->size());
  return written.attach(kj::mv(out), kj::mv(owned));
}

}  // namespace

struct WebServer::Stream {
  WebServer& server;
  kj::Own<kj::PromiseFulfiller<bool>> waker;  // set while the stream waits
  bool pending = false;                       // a change came while it was writing
  bool closed = false;                        // the server ended it (too many streams)
  explicit Stream(WebServer& s) : server(s) {
    server.streams_.push_back(this);
    while (server.streams_.size() > WEB_EVENT_STREAMS_MAX) {
      Stream* oldest = server.streams_.front();
      server.streams_.pop_front();
      oldest->closed = true;
      if (oldest->waker && oldest->waker->isWaiting()) oldest->waker->fulfill(false);
    }
  }
  ~Stream() { server.streams_.remove(this); }
};

class WebServer::Service final : public kj::HttpService {
public:
  explicit Service(WebServer& s) : s_(s) {}

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders& headers,
                            kj::AsyncInputStream& body, Response& response) override {
    // 1. Host: only our own names (no DNS rebinding).
    std::string host = header(headers, kj::HttpHeaderId::HOST).value_or("");
    if (!hostAllowed(host, s_.hosts_)) {
      return error(response, 421, "this page answers only to its own address", "open the link 'kith web' prints");
    }
    kj::Url parsed;
    KJ_IF_MAYBE(u, kj::Url::tryParse(url, kj::Url::HTTP_REQUEST)) {
      parsed = kj::mv(*u);
    } else {
      return error(response, 400, "that address is not understood", "open the link 'kith web' prints");
    }
    std::string path;
    for (const auto& p : parsed.path) path += "/" + std::string(p.cStr());
    if (path.empty()) path = "/";
    Query query;
    for (const auto& q : parsed.query) query[q.name.cStr()] = q.value.cStr();

    bool isPost = method == kj::HttpMethod::POST;
    if (!isPost && method != kj::HttpMethod::GET) {
      return error(response, 405, "only GET and POST are answered here", "");
    }
    // 2. Cross-site: a POST must come from our own page.
    if (isPost) {
      auto origin = header(headers, s_.ids_.origin);
      std::optional<std::string_view> o;
      if (origin) o = *origin;
      if (!originAllowed(o, host)) {
        s_.log_.info("web: refused a cross-site {} {}", "POST", path);
        return error(response, 403, "this request did not come from your kith page", "use the page itself");
      }
    }
    if (!isPost && path == "/") return asset(response, "index.html");
    if (!isPost && path == "/login") return asset(response, "login.html");
    if (!isPost && path.rfind("/assets/", 0) == 0 && path.find('/', 8) == std::string::npos) {
      return asset(response, path.substr(8));
    }
    if (isPost && path == "/login") {
      return readBody(body, WEB_LOGIN_BODY_BYTES_MAX).then([this, &response](std::optional<std::string> text) {
        if (!text) return tooLarge(response);
        return login(response, *text);
      });
    }
    if (path.rfind("/api/", 0) != 0) return error(response, 404, "there is no such page", "");

    // 3. The session.
    std::optional<std::string> cookie;
    if (auto c = header(headers, s_.ids_.cookie)) cookie = cookieValue(*c, SESSION_COOKIE);
    int64_t now = nowMs();
    const Sessions::Session* session = cookie ? s_.sessions_.find(*cookie, now) : nullptr;
    if (session == nullptr) {
      return error(response, 401, "you are not signed in", "run 'kith web' and open the link it prints");
    }
    std::string name = path.substr(5);
    if (!isPost) {
      if (name == "events") return events(response);
      if (name == "photo") return photo(response, query);
      auto answer = s_.api_.get(name, query, session->csrf);
      if (!answer) return error(response, 404, "there is no such request", "");
      return send(response, *answer);
    }
    // 4. The CSRF token of this session.
    std::string csrf = header(headers, s_.ids_.csrf).value_or("");
    if (!equalsConstantTime(csrf, session->csrf)) {
      return error(response, 403, "this request did not come from your kith page", "reload the page");
    }
    if (name == "logout") {
      s_.sessions_.close(*cookie);
      return send(response, ApiAnswer{200, {{"ok", true}}});
    }
    return readBody(body, WEB_BODY_BYTES_MAX)
        .then([this, name, &response](std::optional<std::string> text) -> kj::Promise<void> {
          if (!text) return tooLarge(response);
          if (!jsonDepthWithin(*text, WEB_JSON_DEPTH_MAX)) {
            return error(response, 400, "the request's body nests too deeply", "reload the page");
          }
          json j = json::parse(*text, nullptr, false);
          if (j.is_discarded()) return error(response, 400, "the request's body is not JSON", "reload the page");
          auto answer = s_.api_.post(name, j);
          if (!answer) return error(response, 404, "there is no such request", "");
          return answer->then([this, &response](ApiAnswer a) { return send(response, a); });
        });
  }

private:
  static std::optional<std::string> header(const kj::HttpHeaders& headers, kj::HttpHeaderId id) {
    kj::Maybe<kj::StringPtr> v = headers.get(id);
    KJ_IF_MAYBE(p, v) { return std::string(p->cStr()); }
    return std::nullopt;
  }

  // The body, or nullopt past `max` bytes.
  kj::Promise<std::optional<std::string>> readBody(kj::AsyncInputStream& body, size_t max) {
    kj::Maybe<uint64_t> length = body.tryGetLength();
    KJ_IF_MAYBE(n, length) {
      if (*n > max) return std::optional<std::string>();
    }
    return body.readAllBytes(max + 1).then(
        [max](kj::Array<kj::byte> bytes) -> std::optional<std::string> {
          if (bytes.size() > max) return std::nullopt;
          return std::string(bytes.asChars().begin(), bytes.size());
        },
        [](kj::Exception&& e) -> std::optional<std::string> {
          // readAllBytes fails when the limit is reached before the end; a lost connection
          // fails the answer's write as well.
          if (e.getType() == kj::Exception::Type::DISCONNECTED) kj::throwFatalException(kj::mv(e));
          return std::nullopt;
        });
  }

  kj::Promise<void> tooLarge(Response& response) {
    return error(response, 413, "that is too large to send in one go",
                 "send fewer or smaller photos (at most 4 of 8 MB each)");
  }

  kj::Promise<void> send(Response& response, const ApiAnswer& a, const char* setCookie = nullptr) {
    kj::HttpHeaders h(*s_.headerTable_);
    secure(h);
    h.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json; charset=utf-8");
    if (setCookie != nullptr) h.set(s_.ids_.setCookie, setCookie);
    return sendBytes(response, a.status, h, a.body.dump(-1, ' ', false, json::error_handler_t::replace));
  }

  kj::Promise<void> error(Response& response, unsigned status, const std::string& what, const std::string& hint) {
    return send(response, ApiAnswer{status, {{"error", what}, {"hint", hint}}});
  }

  kj::Promise<void> asset(Response& response, const std::string& name) {
    const EmbeddedFile* f = findEmbedded(name);
    std::string_view type = contentTypeOf(name);
    if (f == nullptr || type.empty()) return error(response, 404, "there is no such file", "");
    kj::HttpHeaders h(*s_.headerTable_);
    secure(h);
    h.set(kj::HttpHeaderId::CONTENT_TYPE, kj::heapString(type.data(), type.size()));
    // The bytes are the binary's own: no copy needed while the write runs.
    auto out = response.send(200, "OK", h, f->size);
    auto written = out->write(f->data, f->size);
    return written.attach(kj::mv(out));
  }

  kj::Promise<void> login(Response& response, const std::string& text) {
    json j = json::parse(text, nullptr, false);
    std::string token;
    if (j.is_object() && j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
    int64_t now = nowMs();
    if (!s_.logins_.redeem(token, now)) {
      s_.log_.info("web: refused a sign-in with a wrong, used or expired link");
      return error(response, 403, "this sign-in link was used already or is too old",
                   "run 'kith web' again for a new one");
    }
    std::string id = s_.sessions_.open(now);
    s_.log_.info("web: signed in a browser ({} session(s))", s_.sessions_.size());
    std::string cookie = sessionCookie(id, WEB_SESSION_TTL_MS);
    return send(response, ApiAnswer{200, {{"ok", true}}}, cookie.c_str());
  }

  kj::Promise<void> photo(Response& response, const Query& query) {
    PhotoAnswer p;
    try {
      p = s_.api_.photo(query);
    } catch (const Error& e) { return send(response, Api::errorAnswer(e)); }
    kj::HttpHeaders h(*s_.headerTable_);
    secure(h);
    h.set(kj::HttpHeaderId::CONTENT_TYPE, kj::heapString(p.contentType.c_str()));
    if (p.attachment) h.add("Content-Disposition", "attachment");
    return sendBytes(response, 200, h, std::move(p.bytes));
  }

  kj::Promise<void> events(Response& response) {
    kj::HttpHeaders h(*s_.headerTable_);
    secure(h);
    h.set(kj::HttpHeaderId::CONTENT_TYPE, "text/event-stream; charset=utf-8");
    auto out = response.send(200, "OK", h);
    auto stream = kj::heap<Stream>(s_);
    auto& st = *stream;
    auto& o = *out;
    return o.write(": kith\n\n", 8)
        .then([this, &st, &o]() { return eventLoop(st, o); })
        .attach(kj::mv(out), kj::mv(stream));
  }

  kj::Promise<void> eventLoop(Stream& st, kj::AsyncOutputStream& out) {
    return s_.nextEvent(st).then([this, &st, &out](bool changed) -> kj::Promise<void> {
      if (st.closed) return kj::READY_NOW;
      static const std::string event = "event: changed\ndata: {}\n\n";
      static const std::string still = ": still here\n\n";
      const std::string& text = changed ? event : still;
      return out.write(text.data(), text.size()).then([this, &st, &out]() { return eventLoop(st, out); });
    });
  }

  WebServer& s_;
};

WebServer::WebServer(node::UvEventPort& port, Household household, WebOptions options, spdlog::logger& log)
    : port_(port), options_(std::move(options)), log_(log), logins_(options_.loginsPath),
      api_(std::move(household), log), tasks_(*this) {
  kj::HttpHeaderTable::Builder builder;
  ids_.cookie = builder.add("Cookie");
  ids_.origin = builder.add("Origin");
  ids_.csrf = builder.add("X-Kith-Csrf");
  ids_.setCookie = builder.add("Set-Cookie");
  headerTable_ = builder.build();
  service_ = kj::heap<Service>(*this);
}

// tasks_, declared last, goes first: the connections (and their streams) before the HTTP server,
// the listener and the API they use.
WebServer::~WebServer() = default;

void WebServer::start() {
  try {
    listener_ = kj::heap<node::UvListener>(port_, options_.host.c_str(), options_.port);
  } catch (const kj::Exception& e) {
    throw Error(ErrorKind::IO,
                "cannot serve the web page on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                    e.getDescription().cStr(),
                "choose another address with --web HOST:PORT, or turn the page off with --no-web");
  }
  hosts_ = allowedHosts(options_.host, listener_->getPort());
  kj::HttpServerSettings settings;
  http_ = kj::heap<kj::HttpServer>(port_.getTimer(), *headerTable_, *service_, settings);
  tasks_.add(acceptLoop());
}

uint16_t WebServer::port() const { return listener_ ? listener_->getPort() : 0; }

std::string WebServer::address() const {
  bool v6 = options_.host.find(':') != std::string::npos;
  return (v6 ? "[" + options_.host + "]" : options_.host) + ":" + std::to_string(port());
}

kj::Promise<void> WebServer::acceptLoop() {
  return listener_->accept().then([this](kj::Own<node::UvStream> stream) {
    if (connections_ >= WEB_CONNECTIONS_MAX) {
      log_.warn("web: {} connections open already; closed a new one", connections_);
    } else {
      ++connections_;
      tasks_.add(http_->listenHttp(kj::mv(stream)).attach(kj::defer([this]() { --connections_; })));
    }
    return acceptLoop();
  });
}

void WebServer::taskFailed(kj::Exception&& e) {
  if (e.getType() == kj::Exception::Type::DISCONNECTED) return;
  log_.debug("web: {}", e.getDescription().cStr());
}

kj::Promise<bool> WebServer::nextEvent(Stream& st) {
  if (st.closed) return false;
  if (st.pending) {
    st.pending = false;
    return true;
  }
  auto paf = kj::newPromiseAndFulfiller<bool>();
  st.waker = kj::mv(paf.fulfiller);
  return paf.promise.exclusiveJoin(
      port_.getTimer().afterDelay(WEB_EVENT_KEEPALIVE_MS * kj::MILLISECONDS).then([]() { return false; }));
}

void WebServer::storeChanged() {
  if (eventScheduled_ || streams_.empty()) return;
  eventScheduled_ = true;
  tasks_.add(port_.getTimer().afterDelay(WEB_EVENT_DELAY_MS * kj::MILLISECONDS).then([this]() {
    eventScheduled_ = false;
    tellStreams();
  }));
}

void WebServer::tellStreams() {
  for (Stream* st : streams_) {
    if (st->waker && st->waker->isWaiting()) {
      st->waker->fulfill(true);
    } else {
      st->pending = true;
    }
  }
}

}  // namespace kith::web
