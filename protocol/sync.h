// The pure logic of replication: version vectors and what one side lacks of another's. No I/O;
// node/ drives it over RPC.
#pragma once
#include <map>
#include <vector>

#include "protocol/entry.h"

namespace kith::protocol {

// {author: last seq held} for one journal.
using VersionVector = std::map<PublicKey, uint64_t>;

struct Want {
  PublicKey author{};
  uint64_t fromSeq = 0;  // first seq missing
  uint64_t toSeq = 0;    // last seq the other side has
};

// What `local` lacks of `remote`, one range per author, the owner's chain first (it carries the
// membership that authorises everyone else's entries), then by author key.
std::vector<Want> missing(const VersionVector& local, const VersionVector& remote, const PublicKey& owner);

// The number of entries in `wants`.
uint64_t count(const std::vector<Want>& wants);

}  // namespace kith::protocol
