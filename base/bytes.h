// Byte containers and the text encodings kith shows to people (lowercase hex).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kith {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;
using Key32 = std::array<uint8_t, 32>;

inline ByteView asBytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
inline std::string_view asChars(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::string toHex(ByteView bytes);
// Decodes lowercase or uppercase hex; nullopt when the text is not hex of an even length.
std::optional<Bytes> tryFromHex(std::string_view hex);
// Decodes exactly 32 bytes of hex (64 characters); nullopt otherwise.
std::optional<Key32> tryKey32FromHex(std::string_view hex);

// Big-endian integer encoding, used in LMDB keys so that byte order is numeric order.
void putU64(Bytes& out, uint64_t v);
void putU32(Bytes& out, uint32_t v);
uint64_t getU64(const uint8_t* p);
uint32_t getU32(const uint8_t* p);

}  // namespace kith
