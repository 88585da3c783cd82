// The JSON API the household's page uses (specs/web-api.md, "The API"): reads through
// store/timeline.h, writes through store/actions.h (the code paths of the `kith` commands), and
// invites and joins by running `kith invite` and `kith accept` themselves (web/child.h).
//
// Threading: the loop thread.
// Caveats: an Error thrown by the layers below becomes an answer with its message and hint and a
// status for its kind; anything else is a 500 whose details go to the node's log only.
#pragma once
#include <functional>
#include <map>
#include <string>

#include <kj/async.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "store/actions.h"
#include "web/child.h"

namespace kith::web {

// What the page reads and writes as: the household's store, its member's keys and name, and what
// the running node knows (its peers and relays).
struct Household {
  store::Store& store;
  const crypto::Identity& identity;
  ByteView storageKey;
  std::string name;
  std::string homePath;                    // given to the child processes as --home
  std::string kithBinary;                  // the `kith` binary the node runs as
  std::function<nlohmann::json()> status;  // {"listen", "peers", "relays"} as the node sees them
  std::function<void()> wrote;             // after a write: the node sends it out now
  std::function<void()> configChanged;     // after a child changed config.json (accept: a new peer)
};

struct ApiAnswer {
  unsigned status = 200;
  nlohmann::json body;
};

// A photo for the browser: its bytes and how to send them.
struct PhotoAnswer {
  std::string contentType;
  bool attachment = false;  // not an image the page shows: sent as a download
  std::string name;
  Bytes bytes;
};

using Query = std::map<std::string, std::string>;

class Api {
public:
  Api(Household household, spdlog::logger& log);

  // GET /api/NAME?query (session, timeline, members, status). nullopt: no such endpoint. `csrf` is
  // the asking session's token, which /api/session hands to the page.
  std::optional<ApiAnswer> get(std::string_view name, const Query& query, const std::string& csrf);
  // POST /api/NAME with a JSON body. nullopt: no such endpoint.
  std::optional<kj::Promise<ApiAnswer>> post(std::string_view name, const nlohmann::json& body);
  // GET /api/photo: throws Error like the rest.
  PhotoAnswer photo(const Query& query);
  // The JSON of an Error for the page, and its status.
  static ApiAnswer errorAnswer(const Error& e);

private:
  store::Keyring keyring() const { return store::Keyring{h_.identity, h_.storageKey}; }
  store::Writer writer() const { return store::Writer{h_.store, keyring(), h_.name}; }
  crypto::PublicKey me() const { return h_.identity.publicKey(); }
  store::JournalId journalOf(const std::string& hex) const;
  protocol::Entry entryOf(const std::string& hex) const;

  ApiAnswer session(const std::string& csrf);
  ApiAnswer timeline(const store::JournalId& journal);
  ApiAnswer members(const store::JournalId& journal);
  ApiAnswer status();
  ApiAnswer write(std::string_view name, const nlohmann::json& body);
  kj::Promise<ApiAnswer> child(std::vector<std::string> args, bool invite);

  Household h_;
  spdlog::logger& log_;
  ChildRunner children_;
};

}  // namespace kith::web
