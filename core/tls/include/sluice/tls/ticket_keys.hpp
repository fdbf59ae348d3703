#pragma once
// The session-ticket keys of a process, shared by every loop's server
// context: a ticket one loop issued resumes on any other. Rotated on a timer
// (the application calls rotate(), e.g. from one loop's timer): tickets are
// sealed with the current key; the previous key still opens them for one
// more period (and such a ticket is renewed under the current key); a ticket
// two rotations old is refused, and that client does a full handshake.
//
//   auto keys = tls::ticket_keys::make();                // once per process
//   opts.tickets = keys;                                 // every loop's context_options
//   every period: keys->rotate();                        // any thread
//
// Thread safety: rotate() from any thread (writers take a lock among
// themselves); the handshake path (seal, open) is lock-free: each key sits in
// a slot read under a sequence counter and retried only if a rotation
// overwrote that very slot meanwhile. Keys are 16 name bytes, a 256-bit
// AES-CBC key and a 256-bit HMAC-SHA256 key, from OpenSSL's RAND_bytes.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "sluice/base/result.hpp"

namespace sluice::tls {

// The process's ticket keys (see the file comment). Not copyable or movable:
// contexts point at it (hold it by the shared_ptr make() returns).
class ticket_keys {
 public:
  // One key: its name (sent in the clear in the ticket), the cipher key and
  // the HMAC key.
  struct key {
    std::array<unsigned char, 16> name{};  // sent in the clear: which key sealed a ticket
    std::array<unsigned char, 32> aes{};   // AES-256-CBC key of the ticket's contents
    std::array<unsigned char, 32> hmac{};  // HMAC-SHA256 key over the ticket
  };

  // A key set with a fresh random current key; an error if the random
  // generator failed.
  [[nodiscard]] static result<std::shared_ptr<ticket_keys>> make();

  ticket_keys(const ticket_keys&) = delete;
  ticket_keys& operator=(const ticket_keys&) = delete;

  // A new random current key; the current one becomes the previous one (it
  // still opens tickets), the previous one is forgotten. False (nothing
  // changed) if the random generator failed. Any thread.
  bool rotate() noexcept;
  // How many rotations so far. Any thread.
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  // The key new tickets are sealed with. Any thread, lock-free.
  [[nodiscard]] key current() const noexcept;
  // The key named `name` if it is the current or the previous one; `is_current`
  // says which. False when neither has that name (too old or foreign). Any
  // thread, lock-free.
  bool find(const unsigned char* name, key& out, bool& is_current) const noexcept;

 private:
  ticket_keys() = default;
  static constexpr std::size_t slots = 3;  // current, previous, and the one being rewritten
  static constexpr std::size_t words = sizeof(key) / sizeof(std::uint64_t);
  static_assert(sizeof(key) % sizeof(std::uint64_t) == 0);
  struct slot {
    std::atomic<std::uint64_t> seq{0};  // odd while being written
    std::array<std::atomic<std::uint64_t>, words> bytes{};
  };
  [[nodiscard]] key read(std::uint64_t gen) const noexcept;
  void write(std::uint64_t gen, const key& k) noexcept;

  std::array<slot, slots> slots_{};
  std::atomic<std::uint64_t> generation_{0};
  std::mutex writers_;  // rotate() against rotate() only; readers never take it
};

}  // namespace sluice::tls
