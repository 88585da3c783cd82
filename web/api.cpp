#include "web/api.h"

#include <sodium.h>

#include "base/clock.h"
#include "crypto/fingerprint.h"
#include "protocol/roles.h"
#include "store/invites.h"
#include "web/qr.h"

namespace kith::web {
namespace {

using nlohmann::json;
using protocol::Kind;

// A string field of a request's body, or Error(INPUT) naming it.
std::string field(const json& body, const char* name, bool required = true) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (!required) return {};
    throw Error(ErrorKind::INPUT, std::string("the request lacks \"") + name + "\"", "reload the page");
  }
  if (!it->is_string()) throw Error(ErrorKind::INPUT, std::string("\"") + name + "\" is not text", "reload the page");
  return it->get<std::string>();
}

// A 32-byte id or key given as 64 hex digits, or Error(INPUT) naming `what`.
Key32 keyOf(const std::string& hex, const char* what) {
  auto k = tryKey32FromHex(hex);
  if (!k) throw Error(ErrorKind::INPUT, std::string("'") + hex.substr(0, 80) + "' is not " + what, "reload the page");
  return *k;
}

json heartsJson(const store::JournalView& v, const std::set<crypto::PublicKey>& hearts, const crypto::PublicKey& me) {
  json names = json::array();
  for (const auto& k : hearts) names.push_back(store::displayName(v, k, me));
  return {{"count", hearts.size()}, {"names", names}, {"mine", hearts.count(me) > 0}};
}

json photosJson(const store::JournalId& journal, const std::vector<protocol::Attachment>& list) {
  json out = json::array();
  for (const auto& a : list) {
    out.push_back({{"id", toHex(a.hash)},
                   {"name", a.name},
                   {"type", a.mime},
                   {"size", a.size},
                   {"url", "/api/photo?journal=" + toHex(journal) + "&id=" + toHex(a.hash)}});
  }
  return out;
}

json postJson(const store::JournalId& journal, const store::JournalView& v, const store::PostView& p,
              const crypto::PublicKey& me) {
  json comments = json::array();
  for (const auto& c : p.comments) {
    comments.push_back({{"id", toHex(c.id)},
                        {"author", toHex(c.author)},
                        {"author_name", store::displayName(v, c.author, me)},
                        {"mine", c.author == me},
                        {"time", isoTime(c.timeMs)},
                        {"time_ms", c.timeMs},
                        {"text", c.text},
                        {"edited", c.edited},
                        {"photos", photosJson(journal, c.attachments)},
                        {"hearts", heartsJson(v, c.hearts, me)}});
  }
  return {{"id", toHex(p.id)},
          {"kind", p.kind == Kind::WISH ? "wish" : "update"},
          {"author", toHex(p.author)},
          {"author_name", store::displayName(v, p.author, me)},
          {"mine", p.author == me},
          {"time", isoTime(p.timeMs)},
          {"time_ms", p.timeMs},
          {"text", p.text},
          {"edited", p.edited},
          {"photos", photosJson(journal, p.attachments)},
          {"hearts", heartsJson(v, p.hearts, me)},
          {"comments", comments}};
}

json requestJson(const store::JournalView& v, const store::RequestView& q, const crypto::PublicKey& me) {
  auto people = [&](const std::vector<crypto::PublicKey>& keys) {
    json out = json::array();
    for (const auto& k : keys) out.push_back({{"key", toHex(k)}, {"name", store::displayName(v, k, me)}});
    return out;
  };
  bool holder = std::find(q.holders.begin(), q.holders.end(), me) != q.holders.end();
  bool waiting = std::find(q.waiting.begin(), q.waiting.end(), me) != q.waiting.end();
  return {{"id", toHex(q.id)},
          {"text", q.text},
          {"asked_by", store::displayName(v, q.author, me)},
          {"when", q.whenMs == 0 ? json(nullptr) : json(isoTime(q.whenMs))},
          {"when_ms", q.whenMs},
          {"slots", q.slots},
          {"state", store::requestStateName(q.state)},
          {"holders", people(q.holders)},
          {"waiting", people(q.waiting)},
          {"mine", holder    ? json("holder")
                   : waiting ? json("waiting")
                             : json(nullptr)}};
}

unsigned statusOf(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::USAGE:
    case ErrorKind::INPUT:
      return 400;
    case ErrorKind::NOT_FOUND:
      return 404;
    case ErrorKind::AUTH:
      return 403;
    case ErrorKind::CONFLICT:
      return 409;
    case ErrorKind::CORRUPT:
    case ErrorKind::IO:
      return 500;
  }
  return 500;
}

// "kith: error: WHAT; HINT" (the last such line a child printed), split.
std::pair<std::string, std::string> childError(const std::string& err) {
  std::string line;
  size_t at = err.rfind("kith: error: ");
  if (at == std::string::npos) return {"the command failed", "see the node's log"};
  line = err.substr(at + 13);
  line = line.substr(0, line.find('\n'));
  size_t semi = line.find("; ");
  if (semi == std::string::npos) return {line, ""};
  return {line.substr(0, semi), line.substr(semi + 2)};
}

}  // namespace

Api::Api(Household household, spdlog::logger& log) : h_(std::move(household)), log_(log) {}

ApiAnswer Api::errorAnswer(const Error& e) {
  return ApiAnswer{statusOf(e.kind()), {{"error", e.what()}, {"hint", e.hint()}}};
}

store::JournalId Api::journalOf(const std::string& hex) const {
  auto id = keyOf(hex, "a journal's id");
  if (!h_.store.journal(id)) throw Error(ErrorKind::NOT_FOUND, "this node holds no such journal", "reload the page");
  return id;
}

protocol::Entry Api::entryOf(const std::string& hex) const {
  auto id = keyOf(hex, "an entry's id");
  auto e = h_.store.entryById(id);
  if (!e) throw Error(ErrorKind::NOT_FOUND, "this node holds no such entry", "reload the page");
  return std::move(*e);
}

std::optional<ApiAnswer> Api::get(std::string_view name, const Query& query, const std::string& csrf) {
  auto arg = [&](const char* key) {
    auto it = query.find(key);
    if (it == query.end()) throw Error(ErrorKind::INPUT, std::string("the request lacks ") + key, "reload the page");
    return it->second;
  };
  try {
    if (name == "session") return session(csrf);
    if (name == "timeline") return timeline(journalOf(arg("journal")));
    if (name == "members") return members(journalOf(arg("journal")));
    if (name == "status") return status();
    return std::nullopt;
  } catch (const Error& e) { return errorAnswer(e); }
}

ApiAnswer Api::session(const std::string& csrf) {
  json journals = json::array();
  for (const auto& info : h_.store.journals()) {
    auto m = h_.store.member(info.id, me());
    auto title = store::journalTitle(h_.store, keyring(), info.id);
    journals.push_back({{"id", toHex(info.id)},
                        {"title", title ? json(*title) : json(nullptr)},
                        {"role", m ? protocol::roleName(m->role) : "none"},
                        {"active", m && m->active}});
  }
  return ApiAnswer{200,
                   {{"csrf", csrf},
                    {"me", {{"key", toHex(me())}, {"fingerprint", crypto::fingerprint(me())}, {"name", h_.name}}},
                    {"journals", journals}}};
}

ApiAnswer Api::timeline(const store::JournalId& journal) {
  std::vector<store::DamagedEntry> skipped;
  auto entries = store::readJournal(h_.store, keyring(), journal, &skipped);
  if (!skipped.empty())
    log_.warn("web: {} damaged entries skipped in journal {}; run 'kith check'", skipped.size(),
              toHex(journal).substr(0, 16));
  store::JournalView v = store::foldJournal(entries);
  auto info = h_.store.journal(journal);
  auto m = h_.store.member(journal, me());
  auto title = store::journalTitle(h_.store, keyring(), journal);
  bool active = m && m->active;
  json j = {{"id", toHex(journal)},
            {"title", title ? json(*title) : json(nullptr)},
            {"role", m ? protocol::roleName(m->role) : "none"},
            {"active", active},
            {"may_post", active && protocol::mayAuthorKind(m->role, Kind::UPDATE)},
            {"may_ask", active && protocol::mayAuthorKind(m->role, Kind::ASK)},
            {"is_owner", info && info->owner == me()}};
  json updates = json::array(), wishes = json::array(), requests = json::array();
  for (const auto& p : v.updates) updates.push_back(postJson(journal, v, p, me()));
  for (const auto& p : v.wishes) wishes.push_back(postJson(journal, v, p, me()));
  for (const auto& q : v.requests) requests.push_back(requestJson(v, q, me()));
  return ApiAnswer{
      200,
      {{"journal", j}, {"updates", updates}, {"wishes", wishes}, {"requests", requests}, {"unreadable", v.unreadable}}};
}

ApiAnswer Api::members(const store::JournalId& journal) {
  store::JournalView v = store::foldJournal(store::readJournal(h_.store, keyring(), journal));
  auto info = h_.store.journal(journal);
  json list = json::array();
  for (const auto& m : h_.store.members(journal)) {
    list.push_back({{"key", toHex(m.key)},
                    {"name", store::displayName(v, m.key, me())},
                    {"fingerprint", crypto::fingerprint(m.key)},
                    {"role", protocol::roleName(m.role)},
                    {"active", m.active},
                    {"you", m.key == me()}});
  }
  return ApiAnswer{200, {{"is_owner", info && info->owner == me()}, {"members", list}}};
}

ApiAnswer Api::status() {
  json s = h_.status ? h_.status() : json::object();
  s["me"] = {{"key", toHex(me())}, {"fingerprint", crypto::fingerprint(me())}, {"name", h_.name}};
  return ApiAnswer{200, s};
}

PhotoAnswer Api::photo(const Query& query) {
  auto arg = [&](const char* key) {
    auto it = query.find(key);
    if (it == query.end()) throw Error(ErrorKind::INPUT, std::string("the request lacks ") + key, "reload the page");
    return it->second;
  };
  store::JournalId journal = journalOf(arg("journal"));
  auto hash = keyOf(arg("id"), "a photo's id");
  store::JournalView v = store::foldJournal(store::readJournal(h_.store, keyring(), journal));
  const protocol::Attachment* found = nullptr;
  auto consider = [&](const std::vector<protocol::Attachment>& list) {
    for (const auto& a : list) {
      if (std::equal(a.hash.begin(), a.hash.end(), hash.begin(), hash.end())) found = &a;
    }
  };
  for (const auto* list : {&v.updates, &v.wishes}) {
    for (const auto& p : *list) {
      consider(p.attachments);
      for (const auto& c : p.comments) consider(c.attachments);
    }
  }
  if (found == nullptr) throw Error(ErrorKind::NOT_FOUND, "there is no such photo in this journal", "reload the page");
  PhotoAnswer out;
  out.bytes = store::readAttachment(h_.store, keyring(), journal, *found);
  out.name = found->name;
  for (const char* image : {"image/jpeg", "image/png", "image/gif", "image/webp"}) {
    if (found->mime == image) out.contentType = image;
  }
  if (out.contentType.empty()) {
    out.contentType = "application/octet-stream";
    out.attachment = true;
  }
  return out;
}

std::optional<kj::Promise<ApiAnswer>> Api::post(std::string_view name, const json& body) {
  try {
    if (!body.is_object()) throw Error(ErrorKind::INPUT, "the request's body is not a JSON object", "reload the page");
    if (name == "invite") {
      std::string label = field(body, "label", false);
      std::string role = field(body, "role", false);
      if (role.empty()) role = "subscriber";
      if (role != "subscriber" && role != "coauthor") {
        throw Error(ErrorKind::INPUT, "an invite's role is subscriber or coauthor", "choose one of them");
      }
      store::requireText(label, "label");
      if (label.size() > store::INVITE_LABEL_BYTES_MAX || label.find('\n') != std::string::npos) {
        throw Error(ErrorKind::INPUT,
                    "a label is one line of at most " + std::to_string(store::INVITE_LABEL_BYTES_MAX) + " bytes",
                    "shorten it");
      }
      store::JournalId journal = journalOf(field(body, "journal"));
      return child({"invite", "--journal=" + toHex(journal), "--role=" + role, "--label=" + label}, true);
    }
    if (name == "accept") {
      std::string code = field(body, "code");
      while (!code.empty() && (code.back() == ' ' || code.back() == '\n')) code.pop_back();
      while (!code.empty() && (code.front() == ' ' || code.front() == '\n')) code.erase(0, 1);
      if (code.empty() || code.size() > protocol::INVITE_CODE_CHARS_MAX) {
        throw Error(ErrorKind::INPUT, "that is not an invite code", "copy the whole code you were given");
      }
      store::requireText(code, "invite code");
      return child({"accept", "--", code}, false);
    }
    std::optional<ApiAnswer> answer;
    answer = write(name, body);
    if (answer->status == 404 && answer->body.is_null()) return std::nullopt;
    return kj::Promise<ApiAnswer>(kj::mv(*answer));
  } catch (const Error& e) { return kj::Promise<ApiAnswer>(errorAnswer(e)); }
}

ApiAnswer Api::write(std::string_view name, const json& body) {
  json out;
  if (name == "post") {
    std::vector<store::Photo> photos;
    if (auto it = body.find("photos"); it != body.end() && !it->is_null()) {
      if (!it->is_array()) throw Error(ErrorKind::INPUT, "\"photos\" is not a list", "reload the page");
      store::requirePhotoCount(it->size());
      for (const auto& p : *it) {
        if (!p.is_object()) throw Error(ErrorKind::INPUT, "a photo is not an object", "reload the page");
        std::string name = field(p, "name"), data = field(p, "data");
        Bytes bytes(data.size() / 4 * 3 + 3);
        size_t len = 0;
        if (sodium_base642bin(bytes.data(), bytes.size(), data.data(), data.size(), " \n\r", &len, nullptr,
                              sodium_base64_VARIANT_ORIGINAL) != 0) {
          throw Error(ErrorKind::INPUT, "the photo " + name + " did not arrive whole", "choose it again");
        }
        bytes.resize(len);
        photos.push_back({std::move(name), std::move(bytes)});
      }
    }
    store::Posted posted =
        store::postUpdate(writer(), journalOf(field(body, "journal")), field(body, "text", false), photos);
    out = {{"id", toHex(posted.entry.id)}};
  } else if (name == "comment" || name == "heart") {
    bool heart = name == "heart";
    store::Reaction r = store::react(writer(), entryOf(field(body, "entry")), heart ? Kind::HEART : Kind::COMMENT,
                                     heart ? std::string() : field(body, "text"), {});
    out = {{"id", toHex(r.entry.id)}};
    if (heart) out["on"] = !r.heartOff;
  } else if (name == "wish") {
    protocol::Entry e = store::postWish(writer(), journalOf(field(body, "journal")), field(body, "text"));
    out = {{"id", toHex(e.id)}};
  } else if (name == "claim" || name == "unclaim") {
    protocol::Entry request = entryOf(field(body, "request"));
    store::RequestView q = store::claimRequest(writer(), request, name == "claim" ? Kind::CLAIM : Kind::UNCLAIM);
    const crypto::PublicKey mine = me();
    bool holder = std::find(q.holders.begin(), q.holders.end(), mine) != q.holders.end();
    bool waiting = std::find(q.waiting.begin(), q.waiting.end(), mine) != q.waiting.end();
    out = {{"id", toHex(q.id)}, {"state", holder ? json("holder") : waiting ? json("waiting") : json(nullptr)}};
  } else if (name == "ask") {
    unsigned slots = 1;
    int64_t whenMs = 0;
    if (auto it = body.find("slots"); it != body.end() && !it->is_null()) {
      if (!it->is_number_unsigned()) throw Error(ErrorKind::INPUT, "\"slots\" is not a number", "reload the page");
      slots = static_cast<unsigned>(std::min<uint64_t>(it->get<uint64_t>(), protocol::SLOTS_MAX + 1));
    }
    if (auto it = body.find("when_ms"); it != body.end() && !it->is_null()) {
      if (!it->is_number_integer()) throw Error(ErrorKind::INPUT, "\"when_ms\" is not a number", "reload the page");
      whenMs = it->get<int64_t>();
    }
    protocol::Entry e =
        store::askForHelp(writer(), journalOf(field(body, "journal")), field(body, "text"), whenMs, slots);
    out = {{"id", toHex(e.id)}};
  } else if (name == "done" || name == "cancel") {
    store::RequestView q =
        store::closeRequest(writer(), entryOf(field(body, "request")), name == "done" ? Kind::DONE : Kind::CANCEL);
    out = {{"id", toHex(q.id)}, {"state", name == "done" ? "done" : "cancelled"}};
  } else if (name == "revoke") {
    store::JournalId journal = journalOf(field(body, "journal"));
    auto member = keyOf(field(body, "member"), "a member's key");
    auto m = h_.store.member(journal, member);
    if (!m || !m->active) throw Error(ErrorKind::NOT_FOUND, "that person is not a current member", "reload the page");
    protocol::Entry e = store::removeMember(h_.store, keyring(), journal, member);
    out = {{"journal", toHex(journal)}, {"member", toHex(member)}, {"epoch", e.control.newEpoch}};
  } else {
    return ApiAnswer{404, nullptr};
  }
  if (h_.wrote) h_.wrote();
  return ApiAnswer{200, out};
}

kj::Promise<ApiAnswer> Api::child(std::vector<std::string> args, bool invite) {
  std::vector<std::string> argv = {h_.kithBinary, "--home", h_.homePath, "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string what = args[0];
  return children_.run(std::move(argv)).then([this, invite, what](ChildResult r) -> ApiAnswer {
    if (r.timedOut) {
      return ApiAnswer{502,
                       {{"error", "it took too long: the other node did not answer"},
                        {"hint", "check that it runs, then try again"}}};
    }
    if (r.exitCode != 0) {
      auto [error, hint] = childError(r.err);
      log_.info("web: kith {} failed: {}", what, error);
      unsigned status = error.find("could not") != std::string::npos || error.find("reach") != std::string::npos ? 502
                        : r.exitCode == 2                                                                        ? 400
                                                                                                                 : 403;
      return ApiAnswer{status, {{"error", error}, {"hint", hint}}};
    }
    json j = json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return ApiAnswer{500,
                       {{"error", "the answer of kith " + what + " was not readable"}, {"hint", "see the node's log"}}};
    }
    if (invite && j.contains("code") && j["code"].is_string()) j["qr_svg"] = qrSvg(j["code"].get<std::string>());
    if (h_.configChanged) h_.configChanged();
    if (h_.wrote) h_.wrote();
    return ApiAnswer{200, j};
  });
}

}  // namespace kith::web
