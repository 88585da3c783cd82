#include "protocol/sync.h"

namespace kith::protocol {

std::vector<Want> missing(const VersionVector& local, const VersionVector& remote, const PublicKey& owner) {
  std::vector<Want> out;
  for (const auto& [author, remoteSeq] : remote) {
    auto it = local.find(author);
    uint64_t have = it == local.end() ? 0 : it->second;
    if (remoteSeq > have) out.push_back({author, have + 1, remoteSeq});
  }
  // std::map already orders by key; move the owner to the front.
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].author == owner) {
      Want w = out[i];
      out.erase(out.begin() + static_cast<std::ptrdiff_t>(i));
      out.insert(out.begin(), w);
      break;
    }
  }
  return out;
}

uint64_t count(const std::vector<Want>& wants) {
  uint64_t n = 0;
  for (const auto& w : wants) n += w.toSeq - w.fromSeq + 1;
  return n;
}

}  // namespace kith::protocol
