#pragma once
// Which loop owns a TCP flow: the receive-side scaling function of a NIC,
// computed in software. A Toeplitz hash (Microsoft's RSS specification,
// "RSS hashing") over (source address, destination address, source port,
// destination port) of a received segment, looked up in an indirection
// table (RETA) whose entries are loop numbers. For IPv4 the input is 12
// bytes (two 4-byte addresses), for IPv6 36 (two 16-byte addresses), as
// the specification's TCP/IPv4 and TCP/IPv6 hash types and DPDK's
// rte_thash define them, so a NIC hashing IPv6 flows agrees too.
//
// The same key and table are programmed into devices that have RSS
// (dpdk_device), so for them hardware and software agree and a segment
// always arrives on its owner's queue. Devices that cannot steer (net_tap,
// net_af_packet: the kernel chooses the queue) deliver some segments to the
// wrong loop; the stack then forwards them to the owner through the
// mailboxes (stack::deliver). An outgoing connection picks a source port
// whose hash lands on the connecting loop (pick with owner()), so replies
// come home on either kind of device.
//
// Immutable after construction; any thread.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sluice/inet/ip_address.hpp"

namespace sluice::inet {

// The flow-to-loop function of one runtime (see the file comment), shared by
// every loop's stack and by the device setup.
class flow_steering {
 public:
  // Bytes of a Toeplitz key (RSS's standard length).
  static constexpr std::size_t key_len = 40;
  // The key of Microsoft's RSS specification, the one most NICs ship with:
  // its verification table lets the hash be checked against known values.
  static const std::array<std::uint8_t, key_len> default_key;

  // `loops` loops, a table of `table_size` entries (a power of two; the
  // device's RETA size where it has one), entry i -> loop i % loops.
  explicit flow_steering(unsigned loops, std::size_t table_size = 128,
                         const std::array<std::uint8_t, key_len>& key = default_key);

  // The Toeplitz hash of the 12-byte input: addresses and ports in network
  // order, source first (host-order values here).
  [[nodiscard]] std::uint32_t hash(std::uint32_t src_ip, std::uint32_t dst_ip, std::uint16_t src_port,
                                   std::uint16_t dst_port) const noexcept;
  // The hash of addresses only (what RSS uses for fragments and non-TCP/UDP).
  [[nodiscard]] std::uint32_t hash(std::uint32_t src_ip, std::uint32_t dst_ip) const noexcept;
  // The Toeplitz hash of the 36-byte IPv6 input: the 16-byte addresses
  // (network order) and the ports, source first.
  [[nodiscard]] std::uint32_t hash6(const ip_address& src, const ip_address& dst, std::uint16_t src_port,
                                    std::uint16_t dst_port) const noexcept;
  // The hash of IPv6 addresses only (32 bytes: the IPv6 hash type without
  // ports, for fragments and non-TCP/UDP).
  [[nodiscard]] std::uint32_t hash6(const ip_address& src, const ip_address& dst) const noexcept;
  // The hash of a flow of either family: hash() of the IPv4 addresses when
  // both are IPv4 (a mapped address is hashed as its 4 bytes), hash6()
  // otherwise.
  [[nodiscard]] std::uint32_t hash(const ip_address& src, const ip_address& dst, std::uint16_t src_port,
                                   std::uint16_t dst_port) const noexcept {
    if (src.is_v4() && dst.is_v4()) return hash(src.v4_addr(), dst.v4_addr(), src_port, dst_port);
    return hash6(src, dst, src_port, dst_port);
  }
  // The loop that owns a received segment with these fields.
  [[nodiscard]] unsigned owner(std::uint32_t src_ip, std::uint32_t dst_ip, std::uint16_t src_port,
                               std::uint16_t dst_port) const noexcept {
    if (loops_ <= 1) return 0;
    return table_[hash(src_ip, dst_ip, src_port, dst_port) & (table_.size() - 1)];
  }
  // The same for a flow of either family.
  [[nodiscard]] unsigned owner(const ip_address& src, const ip_address& dst, std::uint16_t src_port,
                               std::uint16_t dst_port) const noexcept {
    if (loops_ <= 1) return 0;
    return table_[hash(src, dst, src_port, dst_port) & (table_.size() - 1)];
  }
  // The number of loops flows are spread over.
  [[nodiscard]] unsigned loops() const noexcept { return loops_; }
  // The Toeplitz key (to program into a device's RSS).
  [[nodiscard]] const std::array<std::uint8_t, key_len>& key() const noexcept { return key_; }
  // The indirection table: entry i is the loop that hashes with low bits i go
  // to (to program into a device's RETA).
  [[nodiscard]] const std::vector<std::uint16_t>& table() const noexcept { return table_; }

 private:
  [[nodiscard]] std::uint32_t toeplitz(const std::uint8_t* input, std::size_t n) const noexcept;

  unsigned loops_;
  std::array<std::uint8_t, key_len> key_;
  std::vector<std::uint16_t> table_;
  // For each input byte position and value: the XOR of the key windows its
  // set bits select (36 x 256 words: IPv6's input is the longest), so a
  // hash is one lookup per input byte.
  std::vector<std::uint32_t> lookup_;
};

}  // namespace sluice::inet
