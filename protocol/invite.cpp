#include "protocol/invite.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "base/error.h"
#include "crypto/hash.h"

namespace kith::protocol {
namespace {

constexpr char ALPHABET[] = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford's base32
constexpr uint8_t ADDRESS_IPV4 = 4;
constexpr uint8_t ADDRESS_IPV6 = 6;
constexpr uint8_t ADDRESS_NAME = 0;
constexpr size_t CHECKSUM_BYTES = 2;
constexpr size_t GROUP_CHARS = 5;

Error mistyped(const std::string& why) {
  return Error(ErrorKind::INPUT, "the invite code is mistyped or incomplete (" + why + ")",
               "copy it again, or ask for a new one");
}

int symbolValue(char c) {
  if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (c == 'o') c = '0';
  if (c == 'i' || c == 'l') c = '1';
  for (int i = 0; i < 32; ++i) {
    if (ALPHABET[i] == c) return i;
  }
  return -1;
}

// CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xffff, most significant bit first), appended
// big-endian. Unlike a truncated hash, it catches every error within 16 consecutive bits of the
// code: every single mistyped letter (5 bits) and every swap of two neighbouring letters.
Bytes checksum(ByteView body) {
  uint16_t crc = 0xffff;
  for (uint8_t byte : body) {
    crc = static_cast<uint16_t>(crc ^ (byte << 8));
    for (int i = 0; i < 8; ++i) crc = static_cast<uint16_t>(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  static_assert(CHECKSUM_BYTES == 2);
  return Bytes{static_cast<uint8_t>(crc >> 8), static_cast<uint8_t>(crc)};
}

// CRC-8 (polynomial 0x07, initial value 0, MSB first, no final xor: CRC-8/SMBUS) of a short
// code's bytes. In 20 letters it catches every single mistyped letter (an error within 8
// consecutive bits) and every swap of neighbouring letters (tests/protocol/invite-test.cpp checks
// both exhaustively), so that a typo says "mistyped" and does not cost one of the invite's tries.
uint8_t checksum8(ByteView body) {
  uint8_t crc = 0;
  for (uint8_t byte : body) {
    crc = static_cast<uint8_t>(crc ^ byte);
    for (int i = 0; i < 8; ++i) crc = static_cast<uint8_t>(crc & 0x80 ? (crc << 1) ^ 0x07 : crc << 1);
  }
  return crc;
}

// The symbols of `text` without separators; throws "too long" past INVITE_CODE_CHARS_MAX.
std::string withoutSeparators(std::string_view text) {
  if (text.size() > INVITE_CODE_CHARS_MAX) throw mistyped("too long");
  std::string symbols;
  for (char c : text) {
    if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    symbols.push_back(c);
  }
  return symbols;
}

bool isLetterOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// The 4 or 16 bytes of a numeric address, or nothing. inet_pton reads a C string, so a host with a
// NUL byte (which would dial only the part before it) is never numeric.
std::optional<Bytes> numericAddress(const std::string& host, int family) {
  if (host.find('\0') != std::string::npos) return std::nullopt;
  uint8_t bytes[16];
  if (inet_pton(family, host.c_str(), bytes) != 1) return std::nullopt;
  return Bytes(bytes, bytes + (family == AF_INET ? 4 : 16));
}

// How the decoder quotes a character it does not know: printable ASCII as itself, anything else by
// its code, so that the message never carries a control byte.
std::string quoted(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", u);
  return std::string("byte ") + buf;
}

}  // namespace

bool isInviteHostName(std::string_view host) {
  if (host.empty() || host.size() > INVITE_HOST_BYTES_MAX) return false;
  size_t labelStart = 0;
  bool lastAllDigits = true;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i < host.size() && host[i] != '.') {
      if (!isLetterOrDigit(host[i]) && host[i] != '-') return false;
      continue;
    }
    std::string_view label = host.substr(labelStart, i - labelStart);
    if (label.empty() || label.size() > INVITE_HOST_LABEL_BYTES_MAX) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    lastAllDigits = label.find_first_not_of("0123456789") == std::string_view::npos;
    labelStart = i + 1;
  }
  return !lastAllDigits;
}

std::optional<std::string> inviteAddressProblem(const InviteAddress& address) {
  if (address.port == 0) return "port 0 cannot be dialled";
  if (numericAddress(address.host, AF_INET) || numericAddress(address.host, AF_INET6)) return std::nullopt;
  if (address.host.empty()) return "the host is empty";
  if (address.host.size() > INVITE_HOST_BYTES_MAX) {
    return "the host name is " + std::to_string(address.host.size()) + " bytes, over the limit of " +
           std::to_string(INVITE_HOST_BYTES_MAX);
  }
  if (!isInviteHostName(address.host)) {
    return "'" + address.host +
           "' is neither a numeric IPv4 or IPv6 address nor a host name of letters, digits, hyphens and dots";
  }
  return std::nullopt;
}

namespace {

// The bytes in Crockford base32, 5 bits per symbol, the last symbol padded with zero bits.
std::string toSymbols(ByteView b) {
  std::string symbols;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t byte : b) {
    buffer = buffer << 8 | byte;
    bits += 8;
    while (bits >= 5) {
      symbols.push_back(ALPHABET[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) symbols.push_back(ALPHABET[(buffer << (5 - bits)) & 31]);
  return symbols;
}

// toSymbols read back: the whole bytes, how many bits were left over, and their value (zero when
// the writer padded). Throws mistyped for a symbol that is not in the alphabet.
struct FromSymbols {
  Bytes bytes;
  int leftoverBits = 0;
  uint32_t padding = 0;
};
FromSymbols fromSymbols(std::string_view symbols) {
  FromSymbols out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : symbols) {
    int v = symbolValue(c);
    if (v < 0) throw mistyped(quoted(c) + " is not a letter of the code");
    buffer = buffer << 5 | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.bytes.push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
  }
  out.leftoverBits = bits;
  out.padding = buffer & ((1u << bits) - 1);
  return out;
}

}  // namespace

Key32 inviteId(ByteView secret) { return crypto::hash("kith/invite/v1", {secret}); }

std::string encodeInvite(const InviteCode& code) {
  KITH_ASSERT(code.secret.size() == INVITE_SECRET_BYTES);
  KITH_ASSERT(!code.addresses.empty() && code.addresses.size() <= INVITE_ADDRESSES_MAX);
  Bytes b{code.relay ? INVITE_VERSION_RELAY : INVITE_VERSION};
  b.insert(b.end(), code.node.begin(), code.node.end());
  b.insert(b.end(), code.secret.begin(), code.secret.end());
  b.push_back(static_cast<uint8_t>(code.addresses.size()));
  for (const auto& a : code.addresses) {
    if (auto problem = inviteAddressProblem(a)) {
      throw Error(ErrorKind::INPUT, "an invite cannot carry this address: " + *problem,
                  "give a numeric address or a host name, with a port, as HOST:PORT");
    }
    if (auto v4 = numericAddress(a.host, AF_INET)) {
      b.push_back(ADDRESS_IPV4);
      b.insert(b.end(), v4->begin(), v4->end());
    } else if (auto v6 = numericAddress(a.host, AF_INET6)) {
      b.push_back(ADDRESS_IPV6);
      b.insert(b.end(), v6->begin(), v6->end());
    } else {
      // inviteAddressProblem let it through as a host name.
      KITH_ASSERT(isInviteHostName(a.host));
      b.push_back(ADDRESS_NAME);
      b.push_back(static_cast<uint8_t>(a.host.size()));
      b.insert(b.end(), a.host.begin(), a.host.end());
    }
    b.push_back(static_cast<uint8_t>(a.port >> 8));
    b.push_back(static_cast<uint8_t>(a.port));
  }
  if (code.relay) b.insert(b.end(), code.relay->begin(), code.relay->end());
  Bytes sum = checksum(b);
  b.insert(b.end(), sum.begin(), sum.end());

  std::string symbols = toSymbols(b);
  std::string out = "kith";
  for (size_t i = 0; i < symbols.size(); i += GROUP_CHARS) out += "-" + symbols.substr(i, GROUP_CHARS);
  return out;
}

InviteCode decodeInvite(std::string_view text) {
  std::string symbols = withoutSeparators(text);
  auto isPrefix = [&] {
    if (symbols.size() < 4) return false;
    for (size_t i = 0; i < 4; ++i) {
      if (std::tolower(static_cast<unsigned char>(symbols[i])) != "kith"[i]) return false;
    }
    return true;
  };
  if (!isPrefix()) {
    throw Error(ErrorKind::INPUT, "that is not a kith invite code", "an invite code starts with 'kith-'");
  }
  symbols.erase(0, 4);
  auto [b, bits, padding] = fromSymbols(symbols);
  if (b.size() < 1 + 32 + INVITE_SECRET_BYTES + 1 + CHECKSUM_BYTES) throw mistyped("too short");
  // The encoder pads the last symbol with fewer than five zero bits. A whole symbol more, or a
  // padding bit set, is a typo that would otherwise decode to the same bytes.
  if (bits >= 5) throw mistyped("too long");
  if (padding != 0) throw mistyped("checksum");
  ByteView body(b.data(), b.size() - CHECKSUM_BYTES);
  Bytes expected = checksum(body);
  if (std::memcmp(expected.data(), b.data() + body.size(), CHECKSUM_BYTES) != 0) throw mistyped("checksum");
  if (b[0] != INVITE_VERSION && b[0] != INVITE_VERSION_RELAY) {
    throw Error(ErrorKind::INPUT, "the invite code is for another version of kith",
                "upgrade kith, or ask for a new code");
  }
  InviteCode code;
  size_t pos = 1;
  std::memcpy(code.node.data(), b.data() + pos, 32);
  pos += 32;
  code.secret.assign(b.begin() + static_cast<std::ptrdiff_t>(pos),
                     b.begin() + static_cast<std::ptrdiff_t>(pos + INVITE_SECRET_BYTES));
  pos += INVITE_SECRET_BYTES;
  size_t count = b[pos++];
  if (count == 0 || count > INVITE_ADDRESSES_MAX) throw mistyped("address count");
  auto need = [&](size_t n) {
    if (pos + n > body.size()) throw mistyped("truncated address");
  };
  for (size_t i = 0; i < count; ++i) {
    need(1);
    uint8_t type = b[pos++];
    InviteAddress a;
    char textAddr[INET6_ADDRSTRLEN];
    if (type == ADDRESS_IPV4) {
      need(4);
      inet_ntop(AF_INET, b.data() + pos, textAddr, sizeof textAddr);
      a.host = textAddr;
      pos += 4;
    } else if (type == ADDRESS_IPV6) {
      need(16);
      inet_ntop(AF_INET6, b.data() + pos, textAddr, sizeof textAddr);
      a.host = textAddr;
      pos += 16;
    } else if (type == ADDRESS_NAME) {
      need(1);
      size_t len = b[pos++];
      need(len);
      if (len == 0) throw mistyped("empty host name");
      if (len > INVITE_HOST_BYTES_MAX) throw mistyped("host name over 253 bytes");
      a.host.assign(reinterpret_cast<const char*>(b.data() + pos), len);
      pos += len;
      if (!isInviteHostName(a.host)) throw mistyped("not a host name");
    } else {
      throw mistyped("address type");
    }
    need(2);
    a.port = static_cast<uint16_t>(b[pos] << 8 | b[pos + 1]);
    pos += 2;
    if (a.port == 0) throw mistyped("port 0");
    code.addresses.push_back(std::move(a));
  }
  if (b[0] == INVITE_VERSION_RELAY) {
    need(32);
    crypto::PublicKey relay;
    std::memcpy(relay.data(), b.data() + pos, 32);
    pos += 32;
    if (!crypto::toBoxPublicKey(relay)) throw mistyped("the relay key is not valid");
    code.relay = relay;
  }
  if (pos != body.size()) throw mistyped("trailing bytes");
  if (!crypto::toBoxPublicKey(code.node)) throw mistyped("the node key is not valid");
  return code;
}

std::string encodeShortInvite(const ShortInviteCode& code) {
  KITH_ASSERT(code.password.size() == INVITE_SHORT_PASSWORD_BYTES);
  auto v4 = numericAddress(code.host, AF_INET);
  if (!v4 || code.port == 0 || *v4 == Bytes(4, 0)) {
    throw Error(ErrorKind::INPUT, "a short code carries one numeric IPv4 address and a port, not " + code.host,
                "give an IPv4 address with --address, or use the long code");
  }
  Bytes b = *v4;
  b.push_back(static_cast<uint8_t>(code.port >> 8));
  b.push_back(static_cast<uint8_t>(code.port));
  b.push_back(code.slot);
  b.insert(b.end(), code.password.begin(), code.password.end());
  b.push_back(checksum8(b));
  KITH_ASSERT(b.size() == INVITE_SHORT_BYTES);
  std::string symbols = toSymbols(b);
  KITH_ASSERT(symbols.size() == INVITE_SHORT_SYMBOLS);
  std::string out;
  for (size_t i = 0; i < symbols.size(); i += INVITE_SHORT_GROUP_CHARS) {
    if (!out.empty()) out += "-";
    out += symbols.substr(i, INVITE_SHORT_GROUP_CHARS);
  }
  KITH_ASSERT(out.size() == INVITE_SHORT_CHARS);
  return out;
}

bool isShortInviteText(std::string_view text) {
  if (text.size() > INVITE_CODE_CHARS_MAX) return false;
  return withoutSeparators(text).size() == INVITE_SHORT_SYMBOLS;
}

ShortInviteCode decodeShortInvite(std::string_view text) {
  std::string symbols = withoutSeparators(text);
  if (symbols.size() != INVITE_SHORT_SYMBOLS) {
    throw mistyped("a short code has " + std::to_string(INVITE_SHORT_SYMBOLS) + " letters and digits, not " +
                   std::to_string(symbols.size()));
  }
  auto [b, bits, padding] = fromSymbols(symbols);
  KITH_ASSERT(b.size() == INVITE_SHORT_BYTES);
  // The four padding bits are zero; a later version may give them a meaning.
  if (padding != 0) throw mistyped("check");
  if (checksum8(ByteView(b.data(), b.size() - 1)) != b.back()) throw mistyped("check");
  ShortInviteCode code;
  char textAddr[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, b.data(), textAddr, sizeof textAddr);
  code.host = textAddr;
  code.port = static_cast<uint16_t>(b[4] << 8 | b[5]);
  code.slot = b[6];
  code.password.assign(b.begin() + 7, b.begin() + 7 + INVITE_SHORT_PASSWORD_BYTES);
  if (code.port == 0) throw mistyped("port 0");
  if (Bytes(b.begin(), b.begin() + 4) == Bytes(4, 0)) throw mistyped("address 0.0.0.0");
  return code;
}

}  // namespace kith::protocol
