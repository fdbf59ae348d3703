#include "sluice/tls/ticket_keys.hpp"

#include <openssl/rand.h>

#include <cstring>

namespace sluice::tls {

namespace {

bool random_key(ticket_keys::key& k) noexcept {
  return RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) == 1 &&
         RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) == 1 &&
         RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) == 1;
}

}  // namespace

result<std::shared_ptr<ticket_keys>> ticket_keys::make() {
  std::shared_ptr<ticket_keys> keys(new ticket_keys());
  key first;
  if (!random_key(first)) return error{"session ticket keys: the random generator failed"};
  keys->write(0, first);
  return keys;
}

void ticket_keys::write(std::uint64_t gen, const key& k) noexcept {
  slot& s = slots_[gen % slots];
  std::uint64_t w[words];
  std::memcpy(w, &k, sizeof k);
  const std::uint64_t seq = s.seq.load(std::memory_order_relaxed);
  s.seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (std::size_t i = 0; i < words; ++i) s.bytes[i].store(w[i], std::memory_order_relaxed);
  s.seq.store(seq + 2, std::memory_order_release);
}

ticket_keys::key ticket_keys::read(std::uint64_t gen) const noexcept {
  const slot& s = slots_[gen % slots];
  std::uint64_t w[words];
  for (;;) {
    const std::uint64_t before = s.seq.load(std::memory_order_acquire);
    if ((before & 1) != 0) continue;  // a rotation is writing this slot
    for (std::size_t i = 0; i < words; ++i) w[i] = s.bytes[i].load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) == before) break;
  }
  key k;
  std::memcpy(&k, w, sizeof k);
  return k;
}

bool ticket_keys::rotate() noexcept {
  key next;
  if (!random_key(next)) return false;
  std::lock_guard lock(writers_);
  const std::uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
  // The slot of generation gen - slots (older than the previous key): no
  // ticket opens with it any more.
  write(gen, next);
  generation_.store(gen, std::memory_order_release);
  return true;
}

ticket_keys::key ticket_keys::current() const noexcept { return read(generation()); }

bool ticket_keys::find(const unsigned char* name, key& out, bool& is_current) const noexcept {
  const std::uint64_t gen = generation();
  for (std::uint64_t back = 0; back < 2 && back <= gen; ++back) {
    key k = read(gen - back);
    if (std::memcmp(k.name.data(), name, k.name.size()) == 0) {
      out = k;
      is_current = back == 0;
      return true;
    }
  }
  return false;
}

}  // namespace sluice::tls
