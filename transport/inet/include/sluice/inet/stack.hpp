#pragma once
// The user-space IPv4 stack of one loop: Ethernet, ARP, IPv4 (checksums,
// options skipped, fragment reassembly and fragmentation), ICMP echo, UDP
// sockets and TCP (tcp_layer), over one packet_port (a DPDK queue pair or a
// memory wire end).
//
// Receive path, per burst: parse each frame, drop what is wrong (counted by
// reason), answer ARP requests and pings in the buffer they came in, hand
// UDP payloads to their socket's handler as a chain of those buffers, and
// TCP segments to the TCP layer, which keeps their payload in those buffers
// too; at the burst's end TCP hands what arrived to the applications. IPv4
// is demultiplexed by protocol in one switch (deliver()).
//
// Transmit path: frames are queued and handed to the port in bursts
// (flush()); a frame whose next hop is not resolved waits in the ARP cache;
// a frame to our own address loops back into the receive path (as the
// kernel's loopback does), so a loop may connect to its own listeners.
//
// Shared-nothing (DESIGN.md): the ARP cache, the reassembly table, the UDP
// port table and the TCP connections are this loop's alone. A datagram is
// served by the loop on whose queue it arrived; a TCP segment by the loop
// that owns its flow (flow_steering): one that arrives on another loop's
// queue is forwarded to its owner through the mailboxes. ARP knowledge
// learned from the wire is passed to the other loops' stacks the same way
// (stack_group).
//
// Owner core only. Data-path methods are noexcept and allocate nothing.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/transport/loop.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/base/result.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "sluice/core/udp_socket.hpp"
#include "sluice/inet/arp_cache.hpp"
#include "sluice/inet/inet_stats.hpp"
#include "sluice/inet/interface_config.hpp"
#include "sluice/inet/ip_address.hpp"
#include "sluice/inet/ipv4_reassembler.hpp"
#include "sluice/inet/packet_port.hpp"
#include "sluice/inet/stack_group.hpp"
#include "sluice/inet/tcp_config.hpp"
#include "sluice/inet/tcp_layer.hpp"
#include "sluice/inet/wire_format.hpp"

namespace sluice::inet {

class flow_steering;

// How a stack is set up: its address, its tables' limits, its TCP and its place
// among the loops.
struct stack_options {
  interface_config iface;         // address, prefix and gateway
  arp_options arp;                // ARP cache size and timings
  reassembly_options reassembly;  // fragment reassembly limits
  std::uint8_t ttl = 64;          // TTL of the datagrams it sends
  // Announce our address with a gratuitous ARP at start (one loop per port
  // does it: the others share the port's MAC).
  bool announce = true;
  // Ephemeral UDP ports (bind to port 0) come from this range, split between
  // the loops: loop i takes the ports p with p % loops == i.
  std::uint16_t ephemeral_first = 49152;
  std::uint16_t ephemeral_last = 65535;  // last ephemeral port (see ephemeral_first)
  // Receive bursts per poll (each up to `burst` frames) before the loop moves on.
  unsigned max_bursts = 4;
  // Where the other loops' stacks are (nullptr: this loop is alone).
  stack_group* group = nullptr;
  // Which loop owns a TCP flow (nullptr: this one, for every flow).
  const flow_steering* steering = nullptr;
  tcp_config tcp{};  // the TCP layer's settings
  // Frames to our own address waiting to loop back in.
  std::size_t loopback_capacity = 1024;
};

// The IPv4 stack of one loop (see the file comment). Owned by the loop's
// inet_transport.
class stack {
 public:
  // Frames one receive burst (and one fresh-buffer batch) takes at most.
  static constexpr std::size_t burst = 32;
  // Frames the transmit queue holds before flush() must hand them to the port.
  static constexpr std::size_t tx_capacity = 512;

  // A stack on `port` for `loop`, with these options; allocates its tables
  // here.
  stack(transport_loop& loop, packet_port& port, const stack_options& opts);
  stack(const stack&) = delete;
  stack& operator=(const stack&) = delete;
  // Gives back every buffer still held (queued, cached, waiting for ARP or
  // reassembly). The port must outlive the stack.
  ~stack();

  // ---- data path (owner core) ---------------------------------------------------
  // Receives and handles up to max_bursts bursts; returns the frames received.
  std::size_t poll() noexcept;
  // Handles n received frames (the port's, or frames a test made).
  void receive(packet* const* pkts, std::size_t n) noexcept;
  // Hands queued frames to the port; false if some are left (device full).
  bool flush() noexcept;
  // Frames wait to be sent (or to loop back in): the loop must not sleep.
  [[nodiscard]] bool tx_pending() const noexcept { return tx_n_ != 0 || loopback_n_ != 0 || tcp_.acks_pending(); }
  // Sends the datagrams queued on u (the loop's flush phase).
  void send_queued(udp_socket& u) noexcept;

  // ---- control plane ------------------------------------------------------------
  // Gratuitous ARP (if announce). Called once the loop is about to serve.
  void start() noexcept;
  // Binds a UDP port on this loop (0: an ephemeral one of this loop's share).
  result<udp_socket*> udp_bind(const endpoint& at, datagram_handler& h);
  // Closes u: its port is free again (u stays allocated until the loop dies).
  void udp_close(udp_socket& u) noexcept;
  // Another loop learned ip -> mac from the wire (runs on this loop).
  void learned_by_peer(std::uint32_t ip, const mac_address& mac) noexcept;
  // A TCP segment another loop received for a flow this loop owns (runs on
  // this loop; p's segment covers the TCP header and payload).
  void tcp_forwarded(packet* p, const ip_address& src, const ip_address& dst, bool checksum_ok) noexcept;

  // ---- for the TCP layer (owner core) ------------------------------------------------
  // The TCP layer (connections, listeners).
  [[nodiscard]] tcp_layer& tcp() noexcept { return tcp_; }
  // The options it was made with.
  [[nodiscard]] const stack_options& options() const noexcept { return opts_; }
  // What the port offloads.
  [[nodiscard]] const port_capabilities& capabilities() const noexcept { return caps_; }
  // A fresh buffer (data at the headroom), or nullptr.
  [[nodiscard]] packet* tx_packet() noexcept { return fresh(); }
  // p holds an L4 message: IPv4 and Ethernet headers go in front, then it
  // is routed (ARP, loopback) and queued.
  void send_ip(packet* p, std::uint8_t protocol, std::uint32_t dst) noexcept {
    finish_ipv4(p, protocol, dst, next_ip_id(), 0, false);
  }
  // The same for a destination of either family: an IPv4 one takes exactly
  // the path above. IPv6 is not routed yet: the packet is dropped, counted
  // under no_route.
  void send_ip(packet* p, std::uint8_t protocol, const ip_address& dst) noexcept {
    if (dst.is_v4()) [[likely]] {
      finish_ipv4(p, protocol, dst.v4_addr(), next_ip_id(), 0, false);
    } else {
      drop(p, drop_reason::no_route);
    }
  }
  // An address of this stack (a TCP segment or a listener may use it): the
  // IPv4 address; no IPv6 address yet.
  [[nodiscard]] bool is_local(const ip_address& a) const noexcept {
    return a.is_v4() && a.v4_addr() == opts_.iface.address;
  }
  // The source address for a connection to dst, or nothing if dst is not
  // reachable: for IPv4 our address when dst is on the link, ours, or
  // there is a gateway; for IPv6 nothing yet (no IPv6 route).
  [[nodiscard]] std::optional<ip_address> source_for(const ip_address& dst) const noexcept {
    if (!dst.is_v4()) return std::nullopt;
    const interface_config& ifc = opts_.iface;
    const std::uint32_t d = dst.v4_addr();
    if (!ifc.on_link(d) && ifc.gateway == 0 && d != ifc.address) return std::nullopt;
    return ip_address::v4(ifc.address);
  }
  // Drops p, counted under `why`.
  void drop_packet(packet* p, drop_reason why) noexcept { drop(p, why); }

  // The counters (metrics, tests). Any thread.
  [[nodiscard]] const inet_stats& stats() const noexcept { return stats_; }
  // For the transport, which counts its polling work here too.
  [[nodiscard]] inet_stats& stats() noexcept { return stats_; }
  // The address, prefix and gateway.
  [[nodiscard]] const interface_config& config() const noexcept { return opts_.iface; }
  // The port's MAC address (this stack's).
  [[nodiscard]] mac_address mac() const noexcept { return mac_; }
  // The ARP cache (tests and the TCP layer).
  [[nodiscard]] arp_cache& arp() noexcept { return arp_; }
  // The fragment reassembly table (tests).
  [[nodiscard]] ipv4_reassembler& reassembler() noexcept { return reasm_; }
  // The port under the stack.
  [[nodiscard]] packet_port& port() noexcept { return port_; }
  // "PREFIXinet.NAME value" for every counter, drop reasons included.
  void metrics(const std::string& prefix, metric_list& out) const;

 private:
  // One datagram's payload as the packets it came in: one for an unfragmented
  // datagram (segment at the IP payload), several after reassembly.
  struct l4_data {
    const ipv4_header* ip;
    const ipv4_reassembler::fragment* frags;  // nullptr when single
    std::size_t count;
    packet* single;
    const ethernet_header* eth;
  };

  void handle(packet* p) noexcept;
  void handle_arp(packet* p, const ethernet_header& eth) noexcept;
  void handle_ipv4(packet* p, const ethernet_header& eth) noexcept;
  void deliver(const l4_data& d) noexcept;
  void handle_udp(const l4_data& d) noexcept;
  void handle_tcp(packet* p, const ipv4_header& ip) noexcept;
  void loop_back(packet* p) noexcept;
  void receive_looped() noexcept;
  void handle_icmp(const l4_data& d) noexcept;
  // An ICMP frag-needed for us: to the TCP connection it quotes, if any.
  void handle_frag_needed(const l4_data& d, packet* first) noexcept;
  void drop(packet* p, drop_reason why) noexcept;
  void drop_all(const l4_data& d, drop_reason why) noexcept;

  // Outgoing.
  [[nodiscard]] packet* fresh() noexcept;
  void queue_tx(packet* p) noexcept;
  // Fills in the destination MAC (broadcast, cache, or waits for ARP) and queues.
  void route(packet* p, std::uint32_t dst) noexcept;
  void send_arp(std::uint16_t op, const mac_address& eth_dst, const mac_address& target_mac,
                std::uint32_t target_ip) noexcept;
  // Sends an L4 message: an 8-byte header (checksum already in place) and a
  // payload taken from `copy(dst, offset, n)`; fragments when it exceeds the MTU.
  template <class Copy>
  bool send_l4(std::uint8_t protocol, std::uint32_t dst, const std::byte* l4_header, std::size_t payload_len,
               Copy&& copy) noexcept;
  void send_udp_chain(std::uint16_t src_port, const endpoint& to, buffer_chain& payload) noexcept;
  void send_udp_bytes(std::uint16_t src_port, const endpoint& to, const std::byte* data, std::size_t n) noexcept;
  // The copying path of both: sum_payload(checksum&) adds the payload to the
  // UDP checksum, copy(dst, offset, n) copies a part of it.
  template <class Sum, class Copy>
  void send_udp_copy(std::uint16_t src_port, const endpoint& to, std::size_t n, Sum&& sum_payload,
                     Copy&& copy) noexcept;
  // Writes IP and Ethernet headers in front of p's L4 bytes and routes it.
  void finish_ipv4(packet* p, std::uint8_t protocol, std::uint32_t dst, std::uint16_t id, std::uint16_t frag_offset,
                   bool more) noexcept;
  // The headers alone (checksum offload flags set as the port allows).
  void prepend_headers(packet* p, std::uint8_t protocol, std::uint32_t dst, std::uint16_t id,
                       std::uint16_t frag_offset, bool more, const mac_address& eth_dst) noexcept;
  [[nodiscard]] std::uint16_t next_ip_id() noexcept;
  [[nodiscard]] bool is_ours(const packet* p) const noexcept { return p->seg.release == release_; }
  [[nodiscard]] udp_socket* find_socket(std::uint16_t port) const noexcept;
  void tell_peers(std::uint32_t ip, const mac_address& mac) noexcept;

  // ARP retries and reassembly deadlines, from the loop's wheel; armed only
  // while something waits, so an idle loop is not woken.
  void schedule_maintenance() noexcept;
  void on_maintenance() noexcept;

  transport_loop& loop_;
  packet_port& port_;
  stack_options opts_;
  port_capabilities caps_;
  mac_address mac_;
  segment_release_fn release_;
  inet_stats stats_;
  arp_cache arp_;
  ipv4_reassembler reasm_;
  timer maintenance_;

  std::array<packet*, burst> rx_{};
  std::array<packet*, tx_capacity> tx_{};
  std::size_t tx_n_ = 0;
  std::array<packet*, burst> spare_{};  // fresh buffers taken from the port in bursts
  std::size_t spare_n_ = 0;
  std::uint32_t ip_id_ = 0;
  // Frames to ourselves, received at the next poll.
  std::vector<packet*> loopback_;
  std::size_t loopback_n_ = 0;
  std::vector<packet*> looped_;

  std::vector<std::pair<std::uint16_t, udp_socket*>> sockets_;
  // Last: its control blocks hold packets and timers of the members above.
  tcp_layer tcp_;
};

}  // namespace sluice::inet
