// A move-only owner of secret bytes in libsodium's guarded memory: sodium_malloc places the bytes
// next to a guard page, excludes them from core dumps and swap where the OS allows, and
// sodium_free wipes them before unmapping. Every secret key kith holds for longer than one call
// (identity, X25519 statics and ephemerals, Noise chaining and cipher keys) lives in one of these.
//
// Threading: a SecretBuffer is a plain value; use one from one thread at a time.
//
// Caveats:
// - kith::crypto::init() (sodium_init) must have run before the first SecretBuffer is made.
// - Each buffer costs a few pages of address space (guard pages); don't make one per message.
// - Fresh bytes are not zero (sodium_malloc fills them with 0xdb); write them before reading.
// - A moved-from or default-constructed buffer is empty: data() is nullptr and size() is 0.
// - Transient copies (a DH output on the stack, a hash state) are the caller's to wipe with
//   sodium_memzero; this type only covers what it owns.
#pragma once
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#include "base/bytes.h"

namespace kith::crypto {

class SecretBuffer {
public:
  SecretBuffer() noexcept = default;

  // Throws std::bad_alloc when guarded memory is exhausted (mlock limits count here too).
  explicit SecretBuffer(size_t n) : size_(n) {
    if (n == 0) return;
    data_ = static_cast<uint8_t*>(sodium_malloc(n));
    if (data_ == nullptr) throw std::bad_alloc();
  }

  // Copying a secret is always explicit, so that a second copy is a visible decision.
  static SecretBuffer copyOf(ByteView source) {
    SecretBuffer out(source.size());
    if (!source.empty()) std::memcpy(out.data(), source.data(), source.size());
    return out;
  }

  SecretBuffer(SecretBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  SecretBuffer& operator=(SecretBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  SecretBuffer(const SecretBuffer&) = delete;
  SecretBuffer& operator=(const SecretBuffer&) = delete;
  ~SecretBuffer() { release(); }

  uint8_t* data() noexcept { return data_; }
  const uint8_t* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // Valid until this buffer is moved from or destroyed.
  ByteView view() const noexcept { return {data_, size_}; }

private:
  void release() noexcept {
    if (data_ != nullptr) sodium_free(data_);  // sodium_free wipes before unmapping.
    data_ = nullptr;
    size_ = 0;
  }

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kith::crypto
