// A short, human-comparable fingerprint ("safety number") of a public key, for people to compare
// in person or over the phone: four groups of five digits, e.g. "04719 88231 50912 33870".
// specs/identity.md gives the computation; about 66 bits, enough against a targeted second key.
#pragma once
#include <string>

#include "crypto/keys.h"

namespace kith::crypto {

std::string fingerprint(const PublicKey& key);

}  // namespace kith::crypto
