// Member records: read back here; written on append (store/append.cpp) from the journal's
// control entries.
#include "store/store-impl.h"

namespace kith::store {

using namespace internal;

std::optional<Member> Store::Impl::memberRecord(const Txn& txn, const JournalId& j, const PublicKey& m) const {
  auto v = members.get(txn, memberKey(j, m));
  if (!v) return std::nullopt;
  return decodeMember(m, *v);
}

std::vector<Member> Store::Impl::memberRecords(const Txn& txn, const JournalId& j) const {
  std::vector<Member> out;
  members.scan(txn, j, [&](ByteView k, ByteView v) {
    out.push_back(decodeMember(key32At(k.data() + KEY_BYTES), v));
    return true;
  });
  return out;
}

size_t Store::Impl::activeMembers(const Txn& txn, const JournalId& j) const {
  size_t n = 0;
  members.scan(txn, j, [&](ByteView k, ByteView v) {
    if (decodeMember(key32At(k.data() + KEY_BYTES), v).active) ++n;
    return true;
  });
  return n;
}

std::vector<Member> Store::members(const JournalId& journal) const {
  ReadTxn txn(impl_->env);
  return impl_->memberRecords(txn, journal);
}

std::optional<Member> Store::member(const JournalId& journal, const PublicKey& key) const {
  ReadTxn txn(impl_->env);
  return impl_->memberRecord(txn, journal, key);
}

}  // namespace kith::store
