// Fuzz target: invite codes. The input is the text a person pasted. decodeInvite must refuse with
// kith::Error(INPUT) and nothing else; whatever it accepts must be an invite the spec allows (every
// host a numeric address or an isInviteHostName, no port 0), encodeInvite must encode it without
// throwing or asserting, and that code must decode to the same invite and encode to the same text.
// The same holds for short codes (protocol/invite.h), tried first on text of their length.
#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "protocol/invite.h"
#include "tests/fuzz/fuzz-support.h"

namespace {

using namespace kith;

bool sameInvite(const protocol::InviteCode& a, const protocol::InviteCode& b) {
  if (a.node != b.node || a.secret != b.secret || a.addresses.size() != b.addresses.size()) return false;
  for (size_t i = 0; i < a.addresses.size(); ++i) {
    if (a.addresses[i].host != b.addresses[i].host) return false;
    if (a.addresses[i].port != b.addresses[i].port) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kith::fuzz::setUp();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (protocol::isShortInviteText(text)) {
    protocol::ShortInviteCode shortCode;
    try {
      shortCode = protocol::decodeShortInvite(text);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::INPUT) fuzz::contractBroken("invite", std::string("not an INPUT error: ") + e.what());
      return 0;
    }
    std::string shortText;
    try {
      shortText = protocol::encodeShortInvite(shortCode);
    } catch (const Error& e) {
      fuzz::contractBroken("invite", std::string("a decoded short code does not encode: ") + e.what());
    }
    protocol::ShortInviteCode back = protocol::decodeShortInvite(shortText);
    if (back.host != shortCode.host || back.port != shortCode.port || back.slot != shortCode.slot ||
        back.password != shortCode.password) {
      fuzz::contractBroken("invite", "a short code does not round-trip");
    }
    return 0;
  }
  protocol::InviteCode code;
  try {
    code = protocol::decodeInvite(text);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::INPUT) fuzz::contractBroken("invite", std::string("not an INPUT error: ") + e.what());
    return 0;
  }
  for (const auto& a : code.addresses) {
    if (auto problem = protocol::inviteAddressProblem(a)) {
      fuzz::contractBroken("invite", "decoded an address the spec forbids: " + *problem);
    }
  }
  std::string again;
  try {
    again = protocol::encodeInvite(code);
  } catch (const Error& e) {
    fuzz::contractBroken("invite", std::string("a decoded invite does not encode: ") + e.what());
  }
  protocol::InviteCode decodedAgain;
  try {
    decodedAgain = protocol::decodeInvite(again);
  } catch (const Error& e) {
    fuzz::contractBroken("invite", std::string("an encoded invite does not decode: ") + e.what());
  }
  if (!sameInvite(code, decodedAgain)) fuzz::contractBroken("invite", "an invite does not round-trip");
  if (protocol::encodeInvite(decodedAgain) != again) fuzz::contractBroken("invite", "encoding is not stable");
  return 0;
}
