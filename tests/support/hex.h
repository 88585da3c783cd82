// Known-answer vectors are written in hex; this turns them into bytes.
#pragma once
#include <string_view>

#include "base/bytes.h"

namespace kith::test {

// Decodes hex (as tryFromHex does); fails the test when `hex` is not hex of an even length.
Bytes unhex(std::string_view hex);

}  // namespace kith::test
