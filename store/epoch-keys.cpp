// Epoch keys at rest (store/epoch-keys.h): sealed under the storage key on the way in, unsealed
// into guarded memory on the way out.
#include "store/store-impl.h"

namespace kith::store {

using namespace internal;

namespace {

constexpr std::string_view EPOCH_KEY_AD = "kith/epoch-key/v1";

Bytes epochKeyAd(const JournalId& j, uint32_t epoch) { return cat({asBytes(EPOCH_KEY_AD), j, u32(epoch)}); }

}  // namespace

namespace internal {

bool epochKeyOpens(ByteView sealed, const JournalId& j, uint32_t epoch, ByteView storageKey) {
  return crypto::aeadOpenSecret(storageKey, sealed, epochKeyAd(j, epoch)).has_value();
}

}  // namespace internal

void Store::Impl::storeEpochKey(WriteTxn& txn, const JournalId& j, uint32_t epoch, ByteView key, ByteView storageKey) {
  epochs.put(txn, epochKeyRow(j, epoch), crypto::aeadSeal(storageKey, key, epochKeyAd(j, epoch)));
}

std::optional<crypto::SecretBuffer> Store::Impl::loadEpochKey(const Txn& txn, const JournalId& j, uint32_t epoch,
                                                              ByteView storageKey, bool throwIfSealedElsewhere) const {
  auto v = epochs.get(txn, epochKeyRow(j, epoch));
  if (!v) return std::nullopt;
  auto key = crypto::aeadOpenSecret(storageKey, *v, epochKeyAd(j, epoch));
  if (!key && throwIfSealedElsewhere) {
    throw Error(ErrorKind::CORRUPT, "an epoch key in the store does not open with this identity",
                "this store belongs to another identity, or it is damaged");
  }
  return key;
}

const crypto::SecretBuffer* Store::Impl::cachedEpochKey(const Txn& txn, const JournalId& j, uint32_t epoch,
                                                        ByteView storageKey) {
  auto it = keyCache.find({j, epoch});
  if (it == keyCache.end()) {
    auto key = loadEpochKey(txn, j, epoch, storageKey, /*throwIfSealedElsewhere=*/false);
    it = keyCache.emplace(std::make_pair(j, epoch), CachedKey{std::move(key)}).first;
  }
  return it->second.key ? &*it->second.key : nullptr;
}

bool Store::Impl::storeArrivedEpochKey(WriteTxn& txn, const JournalId& j, uint32_t epoch, ByteView key,
                                       ByteView storageKey) {
  bool held = epochs.get(txn, epochKeyRow(j, epoch)).has_value();
  storeEpochKey(txn, j, epoch, key, storageKey);
  keyCache.erase({j, epoch});
  return !held;
}

uint64_t Store::putEpochKey(const JournalId& journal, uint32_t epoch, ByteView key, ByteView storageKey) {
  uint64_t dropped = 0;
  impl_->write([&](WriteTxn& txn) {
    dropped = 0;
    bool arrived = impl_->storeArrivedEpochKey(txn, journal, epoch, key, storageKey);
    auto record = impl_->journalRecord(txn, journal);
    if (!arrived || !record) return;
    dropped = impl_->rejudge(txn, *record, journal, {{epoch, key}});
    impl_->journals.put(txn, journal, record->encode());
  });
  impl_->keyCache.clear();
  return dropped;
}

std::optional<crypto::SecretBuffer> Store::epochKey(const JournalId& journal, uint32_t epoch,
                                                    ByteView storageKey) const {
  ReadTxn txn(impl_->env);
  return impl_->loadEpochKey(txn, journal, epoch, storageKey, /*throwIfSealedElsewhere=*/true);
}

}  // namespace kith::store
