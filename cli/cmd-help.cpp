// The help requests (the planner): `kith ask` posts one, `kith help` lists them, `kith claim` and
// `kith unclaim` take and give back a slot, `kith done` and `kith cancel` close one. Who holds the
// slots is decided by store/timeline.h's rule, the same on every replica.
#include <ctime>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/reading.h"

namespace kith::cli {
namespace {

using nlohmann::json;
using protocol::Body;
using protocol::Kind;

// "2026-12-03T18:00" (local time), with optional seconds, a space for the T, and Z for UTC.
int64_t parseWhen(const std::string& text) {
  std::string s = text;
  bool utc = !s.empty() && (s.back() == 'Z' || s.back() == 'z');
  if (utc) s.pop_back();
  for (char& c : s) {
    if (c == ' ') c = 'T';
  }
  std::tm tm{};
  const char* end = nullptr;
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    tm = std::tm{};
    end = ::strptime(s.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') break;
    end = nullptr;
  }
  if (end == nullptr || tm.tm_year < 70 || tm.tm_year > 1100) {
    throw Error(ErrorKind::USAGE, "'" + text + "' is not a date and time",
                "write it as YYYY-MM-DDTHH:MM, for example 2026-12-03T18:00");
  }
  tm.tm_isdst = -1;
  time_t t = utc ? ::timegm(&tm) : std::mktime(&tm);
  if (t < 0) throw Error(ErrorKind::USAGE, "'" + text + "' is not a date and time", "write it as YYYY-MM-DDTHH:MM");
  return static_cast<int64_t>(t) * 1000;
}

std::string names(Context& ctx, const Reading& r, const std::vector<crypto::PublicKey>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + nameOf(ctx, r, k);
  return out;
}

json requestJson(Context& ctx, const Reading& r, const store::RequestView& q) {
  const crypto::PublicKey me = ctx.unlock().identity.publicKey();
  json holders = json::array(), waiting = json::array();
  for (const auto& k : q.holders) {
    holders.push_back({{"key", toHex(k)}, {"name", store::displayName(r.view, k, me)}});
  }
  for (const auto& k : q.waiting) {
    waiting.push_back({{"key", toHex(k)}, {"name", store::displayName(r.view, k, me)}});
  }
  return {{"id", toHex(q.id)},
          {"journal", toHex(r.journal)},
          {"text", q.text},
          {"asked_by", store::displayName(r.view, q.author, me)},
          {"when", q.whenMs == 0 ? json(nullptr) : json(isoTime(q.whenMs))},
          {"slots", q.slots},
          {"state", store::requestStateName(q.state)},
          {"holders", holders},
          {"waiting", waiting}};
}

void describe(Context& ctx, const Reading& r, const store::RequestView& q, std::ostringstream& text) {
  text << "[" << shortHex(q.id) << "] " << terminalSafe(q.text, Newlines::ESCAPE) << "\n"
       << "    when: " << whenText(q.whenMs) << ";  asked by " << nameOf(ctx, r, q.author) << "\n"
       << "    " << q.holders.size() << " of " << q.slots << " taken" << (q.holders.empty() ? "" : ": ")
       << names(ctx, r, q.holders);
  if (!q.waiting.empty()) text << ";  waiting: " << names(ctx, r, q.waiting);
  if (q.state != store::RequestState::OPEN) text << ";  " << store::requestStateName(q.state);
  text << "\n";
}

void cmdAsk(Context& ctx, const std::optional<std::string>& journalArg, const std::string& text,
            const std::optional<std::string>& when, unsigned slots) {
  int64_t whenMs = when ? parseWhen(*when) : 0;
  store::JournalId journal = ctx.journal(journalArg);
  protocol::Entry e = store::askForHelp(writerOf(ctx), journal, text, whenMs, slots);
  std::string note = ctx.deliveryNote();
  ctx.print({{"id", toHex(e.id)},
             {"journal", toHex(journal)},
             {"when", whenMs == 0 ? json(nullptr) : json(isoTime(whenMs))},
             {"slots", slots},
             {"queued", !note.empty()}},
            "Asked for help [" + shortHex(e.id) + "]: " + terminalSafe(text, Newlines::ESCAPE) + " (" +
                whenText(whenMs) + ", " + std::to_string(slots) + (slots == 1 ? " person" : " people") + ")" +
                (note.empty() ? "" : "\n" + note));
}

void cmdHelp(Context& ctx, const std::optional<std::string>& journalArg, bool all) {
  std::vector<store::JournalId> journals = ctx.journalsOrAll(journalArg);
  json list = json::array();
  std::ostringstream text;
  size_t shown = 0;
  for (const auto& j : journals) {
    Reading r = readJournalView(ctx, j);
    bool header = false;
    for (const auto& q : r.view.requests) {
      if (!all && q.state != store::RequestState::OPEN) continue;
      list.push_back(requestJson(ctx, r, q));
      if (!header) {
        text << (shown == 0 ? "" : "\n") << "# "
             << (r.title ? terminalSafe(*r.title, Newlines::ESCAPE) : toHex(j).substr(0, 16)) << "\n";
        header = true;
      }
      describe(ctx, r, q, text);
      ++shown;
    }
  }
  if (shown == 0) {
    text << (all ? "No help requests yet.\n" : "No open help requests.\n")
         << "The family asks with 'kith ask \"Meal for Thursday\" --when 2026-12-03T18:00 --slots 2'.\n";
  } else {
    text << "\nOffer help with 'kith claim ID'; give it back with 'kith unclaim ID'.\n";
  }
  ctx.print(list, text.str());
}

void cmdClaim(Context& ctx, const std::string& id, Kind kind) {
  protocol::Entry request = findEntry(ctx, id);
  const crypto::PublicKey me = ctx.unlock().identity.publicKey();
  store::RequestView q = store::claimRequest(writerOf(ctx), request, kind);
  Reading after = readJournalView(ctx, request.journal);  // for the names of who holds it
  std::ostringstream text;
  if (kind == Kind::UNCLAIM) {
    text << "Gave back your place on \"" << terminalSafe(q.text, Newlines::ESCAPE) << "\"\n";
  } else if (std::find(q.holders.begin(), q.holders.end(), me) != q.holders.end()) {
    text << "You are down for \"" << terminalSafe(q.text, Newlines::ESCAPE) << "\" (" << whenText(q.whenMs)
         << "). Thank you!\n"
         << "If another friend claimed it at the same moment on a node that was offline, whoever claimed first "
            "keeps it; 'kith help' shows who.\n";
  } else {
    text << "All " << q.slots << " places on \"" << terminalSafe(q.text, Newlines::ESCAPE)
         << "\" are taken: you are on the waiting list and move up if someone gives theirs back.\n";
  }
  std::string note = ctx.deliveryNote();
  if (!note.empty()) text << note << "\n";
  json j = requestJson(ctx, after, q);
  j["queued"] = !note.empty();
  std::string s = text.str();
  s.pop_back();
  ctx.print(j, s);
}

void cmdClose(Context& ctx, const std::string& id, Kind kind) {
  store::RequestView q = store::closeRequest(writerOf(ctx), findEntry(ctx, id), kind);
  std::string note = ctx.deliveryNote();
  ctx.print({{"id", toHex(q.id)}, {"state", kind == Kind::DONE ? "done" : "cancelled"}, {"queued", !note.empty()}},
            std::string(kind == Kind::DONE ? "Marked done: " : "Cancelled: ") + "\"" +
                terminalSafe(q.text, Newlines::ESCAPE) + "\"" + (note.empty() ? "" : "\n" + note));
}

struct AskArgs {
  std::optional<std::string> journal;
  std::string text;
  std::optional<std::string> when;
  unsigned slots = 1;
};

struct HelpArgs {
  std::optional<std::string> journal;
  bool all = false;
};

void addRequestCommand(Commands& commands, const char* name, const char* description, Kind kind) {
  commands.add<std::string>(
      name, description,
      [](CLI::App& cmd, std::string& id) {
        cmd.add_option("REQUEST_ID", id, "The request's id from 'kith help'")->required();
      },
      [kind](Context& ctx, const std::string& id) {
        if (kind == Kind::CLAIM || kind == Kind::UNCLAIM) {
          cmdClaim(ctx, id, kind);
        } else {
          cmdClose(ctx, id, kind);
        }
      });
}

}  // namespace

void addHelpCommands(Commands& commands) {
  commands.add<AskArgs>(
      "ask", "Ask friends for help: a meal, a drive, a visit",
      [](CLI::App& cmd, AskArgs& a) {
        addJournalOption(cmd, a.journal);
        cmd.add_option("TEXT", a.text, "What is needed, e.g. \"Meal for Thursday\"")->required();
        cmd.add_option("--when", a.when, "When: YYYY-MM-DDTHH:MM in your local time");
        cmd.add_option("--slots", a.slots, "How many people are needed (default 1)");
      },
      [](Context& ctx, const AskArgs& a) { cmdAsk(ctx, a.journal, a.text, a.when, a.slots); });
  commands.add<HelpArgs>(
      "help", "List the open help requests and who offered",
      [](CLI::App& cmd, HelpArgs& a) {
        addJournalOption(cmd, a.journal, "Only this journal's (default: every journal)");
        cmd.add_flag("--all", a.all, "Done and cancelled ones too");
      },
      [](Context& ctx, const HelpArgs& a) { cmdHelp(ctx, a.journal, a.all); });
  addRequestCommand(commands, "claim", "Offer to help with a request", Kind::CLAIM);
  addRequestCommand(commands, "unclaim", "Give back your place on a request", Kind::UNCLAIM);
  addRequestCommand(commands, "done", "Mark a request done (owner, co-author)", Kind::DONE);
  addRequestCommand(commands, "cancel", "Cancel a request (owner, co-author)", Kind::CANCEL);
}

}  // namespace kith::cli
