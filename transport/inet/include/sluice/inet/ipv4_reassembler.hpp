#pragma once
// IPv4 and IPv6 fragment reassembly (RFC 791, RFC 8200 4.5, with RFC 815's
// hole accounting reduced to "no overlaps, so complete when the bytes add
// up"), one table for both families: a datagram is keyed by its source and
// destination (ip_address), identification (16 bits for IPv4, 32 for IPv6)
// and, for IPv4, protocol (fragment_info); bounded every way an
// attacker could push: a fixed number of datagrams in progress, of fragments
// per datagram, of packets held in all (the buffer memory: each held
// fragment pins one device buffer), and a time limit per datagram. Held
// fragments stay in the buffers they arrived in (zero copy); a completed
// datagram is handed back as its fragments in order.
//
// A full table or a full memory does not refuse the newcomer: it evicts a
// datagram in progress, the oldest of the source that holds the most (slots
// when slots run out, buffers when memory does), counted (frag_evictions,
// and frag_evicted per fragment). So junk first fragments that are never
// completed cannot keep everyone else's fragmented datagrams out: the
// junk's sender pays first, and when the junk comes from many sources the
// oldest goes, which a datagram in progress for milliseconds never is.
//
// Overlapping fragments drop the whole datagram and poison its key until its
// time is up (later fragments of it are dropped too: RFC 5722's rule for
// IPv6, applied here). An exact duplicate (the wire repeated a fragment) is
// dropped alone. Everything dropped is counted by reason.
//
// Owner core only; time is an input.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sluice/inet/ip_address.hpp"

#include "sluice/base/time.hpp"
#include "sluice/inet/inet_stats.hpp"
#include "sluice/inet/packet.hpp"
#include "sluice/inet/wire_format.hpp"

namespace sluice::inet {

// The reassembly limits, part of the stack's options (see the file comment).
struct reassembly_options {
  duration timeout = std::chrono::seconds(10);  // how long a datagram may take to complete, from its first fragment
  std::size_t max_datagrams = 32;         // in progress at once
  std::size_t max_fragments = 64;         // per datagram
  std::size_t max_held_packets = 256;     // fragments held in all (buffer memory)
};

// One fragment as the reassembler sees it, whatever the family.
struct fragment_info {
  ip_address src;            // the datagram's source (IPv4-mapped for IPv4)
  ip_address dst;            // and its destination
  std::uint32_t id = 0;      // identification
  std::uint8_t protocol = 0;  // IPv4: the protocol; IPv6: the fragment header's next header
  bool keyed_by_protocol = true;  // IPv4 (RFC 791 keys by protocol too); IPv6 does not
  std::uint32_t offset = 0;  // bytes into the fragmentable part
  bool more = false;         // more fragments follow
  std::uint32_t header_len = 0;  // bytes in front of the fragmentable part (its 65535-byte bound)

  // An IPv6 fragment: header h, whose extension headers walked to chain c
  // (c.fragment set).
  [[nodiscard]] static fragment_info of_ipv6(const ipv6_header& h, const ipv6_chain& c) noexcept {
    fragment_info f;
    f.src = h.src;
    f.dst = h.dst;
    f.id = c.fragment_id;
    f.protocol = c.upper;
    f.keyed_by_protocol = false;
    f.offset = c.fragment_offset;
    f.more = c.more_fragments;
    f.header_len = c.upper_at;
    return f;
  }
};

// The fragment reassembly table of one stack (see the file comment).
class ipv4_reassembler {
 public:
  // One fragment of a completed datagram: its packet, whose segment covers
  // exactly its payload.
  struct fragment {
    packet* p;  // the fragment's packet (the caller's once the datagram is handed out)
    std::uint16_t offset;  // bytes into the datagram's payload
    std::uint16_t length;  // payload bytes
  };
  // A completed datagram, as add() hands it out.
  struct datagram {
    ipv4_header header;           // IPv4: the first fragment's, as if never fragmented
    std::uint8_t protocol = 0;    // the first fragment's protocol (IPv6: its fragment header's next header)
    const fragment* fragments = nullptr;  // in order; valid until the next add()
    std::size_t count = 0;  // fragments in the list
  };

  // A table bounded by opts, counting into the stack's stats. Allocates its
  // slots once, here.
  ipv4_reassembler(const reassembly_options& opts, inet_stats& stats);
  ipv4_reassembler(const ipv4_reassembler&) = delete;
  ipv4_reassembler& operator=(const ipv4_reassembler&) = delete;
  ~ipv4_reassembler();

  // Takes p, a fragment with header h whose segment now covers exactly its
  // payload. Returns true when it completed a datagram: `out` then lists the
  // fragments, which the caller now owns. Otherwise p is held or dropped.
  bool add(packet* p, const ipv4_header& h, time_point now, datagram& out) noexcept;
  // The same for a fragment of either family (IPv6: p covers the data after
  // the fragment header; out.header is then not filled in).
  bool add(packet* p, const fragment_info& f, time_point now, datagram& out) noexcept;
  // Drops the datagrams whose time is up (frag_timeout per fragment held).
  void expire(time_point now) noexcept;
  // The same, first handing each expiring datagram's first fragment (when
  // it came: offset 0) to first(p, header_len, is_ipv4) before it goes,
  // p still the table's (for RFC 8200 4.5's Time Exceeded, which quotes it;
  // header_len: its fragment_info::header_len).
  template <class First>
  void expire(time_point now, First&& first) noexcept {
    for (slot& s : slots_) {
      if (!s.used || s.deadline > now) continue;
      if (!s.poisoned && !s.frags.empty() && s.frags.front().offset == 0) {
        first(s.frags.front().p, s.first_header_len, s.keyed_by_protocol);
      }
      release(s, drop_reason::frag_timeout);
      s.used = false;
    }
  }
  // The earliest deadline of a datagram in progress; time_point::max() if none.
  [[nodiscard]] time_point next_expiry() const noexcept;

  // Fragments held in all (buffers pinned).
  [[nodiscard]] std::size_t held_packets() const noexcept { return held_; }
  // Datagrams in progress.
  [[nodiscard]] std::size_t in_progress() const noexcept;

 private:
  struct slot {
    bool used = false;
    bool poisoned = false;   // overlapped or malformed: drop the rest until the deadline
    bool have_last = false;
    ip_address src, dst;
    std::uint32_t id = 0;
    std::uint8_t protocol = 0;
    bool keyed_by_protocol = true;
    std::uint8_t first_protocol = 0;  // from the fragment at offset 0
    std::uint32_t first_header_len = 0;  // ... and its header_len
    std::uint32_t total = 0;     // payload bytes, known once the last fragment came
    std::uint32_t received = 0;  // payload bytes held
    time_point deadline{};
    ipv4_header first{};         // from the fragment at offset 0
    bool have_first = false;
    std::vector<fragment> frags; // sorted by offset; capacity reserved up front
  };

  [[nodiscard]] slot* find_or_open(const fragment_info& f, time_point now) noexcept;
  bool add(packet* p, const fragment_info& f, const ipv4_header* h, time_point now, datagram& out) noexcept;
  // The datagram to evict: the oldest of the source that holds the most
  // slots (by_packets: held fragments), never `keep`; nullptr if none.
  [[nodiscard]] slot* victim(const slot* keep, bool by_packets) noexcept;
  void evict(slot& s) noexcept;
  void drop_one(packet* p, drop_reason why) noexcept;
  // Drops everything s holds (counted as `why`) and marks it poisoned.
  void poison(slot& s, drop_reason why) noexcept;
  void release(slot& s, drop_reason why) noexcept;

  reassembly_options opts_;
  inet_stats& stats_;
  std::vector<slot> slots_;
  std::vector<fragment> done_;  // the last completed datagram's fragments
  std::size_t held_ = 0;
};

}  // namespace sluice::inet
